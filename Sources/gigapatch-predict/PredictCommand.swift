import ArgumentParser
import Cluster
import Foundation
import GigapatchCLI
import PatchGD

/// `gigapatch-predict`: per-slide predictions of a checkpoint to CSV, JSON or PANDA's submission form, and to the index.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-predict",
        abstract: "Predict one class per slide with a trained checkpoint; write CSV, JSON or PANDA submission rows and store them in the index.",
        discussion: """
            CSV columns: image_id, predicted, prob_0 ... prob_{K-1}, label (empty when unknown). With labels known it \
            prints accuracy, quadratic weighted kappa and the confusion matrix. Slides that cannot be read are reported \
            and skipped; the exit status is then 1 (the other rows are still written).
            """)

    @OptionGroup(title: "Patch index") var index: IndexOptions
    @Option(help: "Checkpoint written by gigapatch-train (RUNDIR/checkpoints/best.safetensors).") var checkpoint: String
    @Option(help: "New slides to predict (a folder, recursive): ingested first with the checkpoint's tiling and tissue settings into --db, or into OUT's stem + .index.sqlite beside --out.")
    var slides: String?
    @Option(help: "New slides to predict from a manifest (slide,label,...), ingested like --slides.") var manifest: String?
    @Option(help: "Output file.") var out: String
    @Option(help: "Slides to predict: val, test, train or all.") var split: PredictionSplit = .val
    @Option(help: "Predict the slides of this fold (with --split val).") var valFold: Int?
    @Option(help: "csv, json or panda (image_id,isup_grade).") var format: PredictionFormat = .csv
    @Option(help: "Write per-slide heatmaps here (PatchGD): SLIDE.jpg (scores over the thumbnail, with legend) and SLIDE.csv (row, col, level-0 x, y, score).")
    var heatmaps: String?
    @Flag(help: "With --heatmaps: also score each patch by occlusion (zeroing its cell of Z), the check of the gradient x input scores.")
    var occlusion = false
    @OptionGroup(title: "Compute") var compute: ComputeOptions

    func validate() throws {
        guard !index.db.isEmpty || slides != nil || manifest != nil else {
            throw ValidationError("give --db (the patch index holding the slides) or new slides with --slides DIR / --manifest FILE")
        }
    }

    func run() throws {
        var options = PredictOptions(db: index.db, checkpoint: checkpoint, out: out, split: split, valFold: valFold, format: format, compute: compute)
        options.heatmaps = heatmaps
        if slides != nil || manifest != nil {
            options.newSlides = NewSlides(slidesDirectory: slides, manifest: manifest, workers: compute.workers > 0 ? compute.workers : ProcessInfo.processInfo.activeProcessorCount)
        }
        options.occlusion = occlusion
        // Under mpirun the slides are shared among the ranks; rank 0 writes the output and prints.
        let comm: Communicator
        do { comm = try Communicator.world() } catch {
            FileHandle.standardError.write(Data("gigapatch-predict: \(error)\n".utf8))
            throw ExitCode(1)
        }
        do {
            guard let summary = try Predictor.run(options, comm: comm, log: { line in
                if comm.isRoot { FileHandle.standardError.write(Data((line + "\n").utf8)) }
            }) else { return }
            print("\(summary.predictions.count) slides predicted -> \(out)" + (summary.skipped.isEmpty ? "" : "; \(summary.skipped.count) skipped (see above)"))
            if let m = summary.metrics {
                print(String(format: "accuracy %.4f  quadratic weighted kappa %.4f  (%d labelled slides)", m.accuracy, m.kappa, m.count))
                print(m.confusionTable())
            }
            // Like ingest: the rows written stay, and a skipped slide makes the exit status 1.
            if !summary.skipped.isEmpty {
                FileHandle.standardError.write(Data("gigapatch-predict: \(summary.skipped.count) slide\(summary.skipped.count == 1 ? "" : "s") skipped (\(summary.skipped.map(\.key).joined(separator: ", "))); the other predictions are written\n".utf8))
                throw ExitCode(1)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            if comm.size > 1 { comm.abort("\(error)", program: "gigapatch-predict") }
            FileHandle.standardError.write(Data("gigapatch-predict: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
