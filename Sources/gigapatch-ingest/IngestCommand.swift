import Basics
import ArgumentParser
import Cluster
import Foundation
import GigapatchCLI
import Ingest

/// `gigapatch-ingest`: a folder of slides (and/or a manifest) to a SQLite patch index of coordinates.
@main
struct IngestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-ingest",
        abstract: "Find tissue, lay a patch grid and write the patch coordinates of every slide to a SQLite index.",
        discussion: """
            Presets (--preset): \(IngestSettings.presetNames.joined(separator: ", ")); flags override them. \
            A re-run skips slides already done with the same file and parameters; changed parameters make a new tiling \
            beside the old one. Failed slides are recorded with their reason and the others go on; the exit status is 1 \
            when any slide or manifest row failed, in this run or an earlier one (--retry-failed tries them again).
            """)

    @Option(help: "Folder of slides (searched recursively).") var slides: String?
    @Option(help: "Manifest CSV: PANDA's train.csv or slide,label[,split][,fold],...") var manifest: String?
    @Option(help: "Patch index database (created if absent).") var db: String
    @Option(help: "Dataset name inside the database.") var dataset: String = "default"
    @Option(help: "Parameter preset: a shipped name or a .json file.") var preset: String = "default"

    @Option(help: "Patch side in pixels at the target resolution.") var patchSize: Int?
    @Option(help: "Target microns per pixel (read from the nearest finer level and resampled).") var mpp: Double?
    @Option(help: "Pyramid level to read (instead of --mpp).") var level: Int?
    @Option(help: "Step between patches at the target resolution (default: patch size).") var stride: Int?
    @Option(help: "Fraction 0...1 of a patch that must be tissue.") var minTissue: Double?
    @Option(help: "Tissue detection: otsu, or none to keep every patch (UltraMNIST, non-pathology images).") var tissue: String?
    @Option(help: "Drop patches more than this fraction white (glass).") var maxWhitespace: Double?
    @Option(help: "Drop patches more than this fraction unsaturated gray.") var maxGrayspace: Double?
    @Option(help: "Drop patches more than this fraction near-black (pen, folds).") var maxBlack: Double?
    @Option(help: "Number of classes manifest labels must fall in.") var classes: Int?

    @Option(help: "Slides processed in parallel (default: number of cores).") var workers: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Write one QC picture per slide here (thumbnail, tissue outline, kept patches).") var qcDir: String?
    @Option(help: "QC picture format: jpeg (small) or png (lossless, about 10x larger).") var qcFormat: QCFormatChoice = .jpeg
    @Option(help: "Longest side of QC pictures in pixels (default: the tissue mask's, at most 2048).") var qcSize: Int?
    @Option(help: "Write the JSON summary here.") var summary: String?
    @Flag(help: "Retry slides that failed in an earlier run.") var retryFailed = false
    @Flag(help: "Make --db a patch index even when the file exists but is not one (empty, or another SQLite database).")
    var createDb = false

    func validate() throws {
        if let qcSize, qcSize < 16 { throw ValidationError("--qc-size must be 16 or more, not \(qcSize)") }
    }

    func settings() throws -> IngestSettings {
        var s: IngestSettings
        do { s = try IngestSettings.preset(preset) } catch { throw ValidationError(String(describing: error)) }
        if let patchSize { s.patchSize = patchSize }
        if let mpp { s.mpp = mpp; s.level = nil }
        if let level { s.level = level; s.mpp = nil }
        if let stride { s.stride = stride }
        if let minTissue { s.minTissue = minTissue }
        if let tissue { s.tissue.method = tissue }
        if let maxWhitespace { s.maxWhitespace = maxWhitespace }
        if let maxGrayspace { s.maxGrayspace = maxGrayspace }
        if let maxBlack { s.maxBlack = maxBlack }
        if let classes { s.classes = classes }
        if mpp != nil && level != nil { throw ValidationError("give --level or --mpp, not both") }
        if let problem = s.problem() { throw ValidationError(problem) }
        return s
    }

    func run() throws {
        var request = IngestRequest(slidesDirectory: slides, manifestPath: manifest, databasePath: db, dataset: dataset,
                                    settings: try settings(), workers: max(1, workers), qcDirectory: qcDir, retryFailed: retryFailed)
        request.createDatabase = createDb
        request.qcFormat = qcFormat == .jpeg ? .jpeg : .png
        request.qcSize = qcSize
        // Under mpirun rank 0 finds the slides, writes the index and prints; the other ranks only work on slides.
        let comm: Communicator
        do { comm = try Communicator.world() } catch {
            FileHandle.standardError.write(Data("gigapatch-ingest: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let interactive = isatty(STDERR_FILENO) == 1
        let reporter = ProgressReporter(label: comm.size > 1 ? "ingesting on \(comm.size) ranks" : "ingesting", unit: "slides", interactive: interactive)
        let result: IngestSummary
        do {
            result = try IngestStage.run(request, comm: comm, log: { line in
                // On a terminal only what needs attention interrupts the progress line; logs get every slide.
                if !interactive || line.hasPrefix("failed") || line.hasPrefix("empty") || line.hasPrefix("manifest") || line.hasPrefix("note") {
                    FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
                }
            }, progress: { done, total, patches in
                reporter.update(done: done, total: total, extra: "\(patches) patches")
            })
        } catch {
            if comm.size > 1 { comm.abort("\(error)", program: "gigapatch-ingest") }
            FileHandle.standardError.write(Data("gigapatch-ingest: \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard comm.isRoot else { return }
        print(result.table)
        if let summary {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            do { try AtomicFile.write(try encoder.encode(result), to: summary) } catch {
                FileHandle.standardError.write(Data("gigapatch-ingest: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        // Exit 1 while any requested slide is failed in the index, whether it failed now or in an earlier run.
        if result.failedInIndex > 0 { throw ExitCode(1) }
    }
}

/// QC picture formats as command-line choices.
enum QCFormatChoice: String, CaseIterable, ExpressibleByArgument { case jpeg, png }
