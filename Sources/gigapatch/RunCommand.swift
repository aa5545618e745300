import ArgumentParser
import Foundation
import Pipeline
import Report

/// `gigapatch`: runs pipeline files.
@main
struct Gigapatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch",
        abstract: "Gigapatch pipelines: run staged jobs (ultramnist, ingest, split, stain, train, predict) from a YAML file; write run reports.",
        subcommands: [Run.self, ReportCommand.self, CompareCommand.self])
}

/// `gigapatch report RUNDIR`: one self-contained report.html for a training run.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write RUNDIR/report.html: learning curves, confusion matrix, provenance, and optionally predictions, heatmaps and ingest QC.",
        discussion: """
            The page holds everything inline (SVG charts, embedded pictures, no outside host): open it from the file system in             any browser. gigapatch-train writes one at the end of training and gigapatch-predict one beside its CSV.
            """)

    @Argument(help: "Run directory (gigapatch-train --out).") var runDirectory: String
    @Option(help: "Predictions CSV (gigapatch-predict) to list, sortable by confidence and error.") var predictions: String?
    @Option(help: "Heatmaps folder (gigapatch-predict --heatmaps) to show beside each prediction.") var heatmaps: String?
    @Option(help: "Ingest QC folder (gigapatch-ingest --qc-dir) for the QC gallery.") var qcDir: String?
    @Option(help: "Ingest summary JSON (gigapatch-ingest --summary), to list failed slides and why.") var ingestSummary: String?
    @Option(help: "A pipeline's run.json to include in the provenance.") var pipelineRun: String?
    @Option(help: "Output file (default RUNDIR/report.html).") var out: String?

    func run() throws {
        do {
            let report = try RunReport.load(runDirectory: runDirectory, predictions: predictions, heatmaps: heatmaps, qcDirectory: qcDir,
                                            ingestSummary: ingestSummary, pipelineRun: pipelineRun)
            let path = out ?? (runDirectory as NSString).appendingPathComponent("report.html")
            try report.write(to: path)
            print("report -> \(path) (open it in a browser: file://\(URL(fileURLWithPath: path).standardizedFileURL.path))")
        } catch {
            FileHandle.standardError.write(Data("gigapatch report: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `gigapatch compare`: PatchGD against GD at one budget, printed side by side and written as JSON.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare a PatchGD run with a GD run on the same validation set: final and best validation accuracy, kappa, seconds, peak memory.")

    @Option(help: "The PatchGD run directory (gigapatch-train --out).") var patchgd: String
    @Option(help: "The GD run directory.") var gd: String
    @Option(help: "The memory budget both ran at, in words (recorded in the file).") var budget: String
    @Option(help: "Write the comparison here as JSON.") var out: String

    func run() throws {
        do {
            let comparison = try RunComparison.load(patchgd: patchgd, gd: gd, budget: budget)
            try comparison.write(to: out)
            print(comparison.table)
            print("comparison -> \(out)")
        } catch {
            FileHandle.standardError.write(Data("gigapatch compare: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `gigapatch run PIPELINE.yaml`.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a pipeline's stages in order, skipping those whose inputs, parameters and outputs are unchanged.",
        discussion: """
            Each stage runs its gigapatch-<stage> executable (found beside gigapatch, then on PATH) in its own process. \
            RUN_DIR/run.json records the tool version and git commit, resolved parameters, inputs with sizes and hashes, \
            outputs, start and end of every stage and the exit status; a failed stage stops the run and a re-run resumes there.
            """)

    @Argument(help: "Pipeline file (YAML).") var pipeline: String
    @Option(name: .customLong("set"), parsing: .upToNextOption,
            help: "Override variables: --set key=value [key=value ...] (repeatable).") var sets: [String] = []
    @Option(help: "Start at this stage (earlier ones are not run).") var from: String?
    @Option(help: "Redo this stage even if up to date (repeatable).") var force: [String] = []
    @Flag(help: "Print what would run, run nothing.") var dryRun = false

    func run() throws {
        var overrides: [String: String] = [:]
        for item in sets {
            guard let eq = item.firstIndex(of: "="), eq != item.startIndex else { throw ValidationError("--set needs key=value, got '\(item)'") }
            overrides[String(item[..<eq])] = String(item[item.index(after: eq)...])
        }
        do {
            let file = try PipelineFile.load(pipeline, overrides: overrides)
            let runner = PipelineRunner(file: file) { FileHandle.standardError.write(Data(("gigapatch: " + $0 + "\n").utf8)) }
            runner.from = from
            runner.force = Set(force)
            runner.dryRun = dryRun
            runner.arguments = Array(CommandLine.arguments.dropFirst())
            let manifest = try runner.run()
            guard !dryRun else { return }
            print("pipeline \(file.name) done; run manifest: \((file.runDirectory as NSString).appendingPathComponent("run.json"))")
            for stage in manifest.stages {
                let outputs = stage.outputs.filter(\.exists).map { "\($0.option) \($0.path)" }.joined(separator: ", ")
                print("  \(stage.name) [\(stage.status)\(stage.seconds.map { String(format: ", %.0f s", $0) } ?? "")]\(outputs.isEmpty ? "" : ": " + outputs)")
            }
        } catch {
            FileHandle.standardError.write(Data("gigapatch: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
