import Cluster
import ArgumentParser
import Foundation
import NN
import PatchIndex
import Report

/// The output forms of `gigapatch-predict`.
public enum PredictionFormat: String, Sendable, CaseIterable, ExpressibleByArgument {
    /// image_id, predicted, prob_0 ... prob_{K-1}, label
    case csv
    case json
    /// PANDA's submission rows: image_id,isup_grade
    case panda
}

/// Which slides of the index `gigapatch-predict` takes.
public enum PredictionSplit: String, Sendable, CaseIterable, ExpressibleByArgument { case val, test, train, all }

/// What `gigapatch-predict` is asked to do.
public struct PredictOptions: Sendable {
    public var db: String
    public var checkpoint: String
    public var out: String
    public var split: PredictionSplit = .val
    /// With `split == .val`: take the slides of this fold instead of the split named val.
    public var valFold: Int?
    public var format: PredictionFormat = .csv
    /// Threads, patch cache and fill chunk (the options `gigapatch-train` takes for the same).
    public var compute: ComputeOptions
    /// Per-slide heatmaps of where the model looked go here (PatchGD checkpoints): `<slide>.jpg` and `<slide>.csv`.
    public var heatmaps: String?
    /// Also score each cell by occlusion (the check of gradient x input; one head pass per 32 cells).
    public var occlusion = false
    /// New slides (a folder and/or a manifest) to ingest with the checkpoint's tiling and tissue settings into `db`
    /// (an empty `db`: a new index beside `out`) and predict, instead of slides already in the index.
    public var newSlides: NewSlides?

    public init(db: String, checkpoint: String, out: String, split: PredictionSplit = .val, valFold: Int? = nil, format: PredictionFormat = .csv,
                compute: ComputeOptions = .parsedDefaults) {
        self.db = db
        self.checkpoint = checkpoint
        self.out = out
        self.split = split
        self.valFold = valFold
        self.format = format
        self.compute = compute
    }
}

/// One slide's prediction.
public struct SlidePrediction: Sendable, Equatable, Codable {
    public var imageID: String
    public var predicted: Int
    public var probabilities: [Double]
    public var label: Int?

    enum CodingKeys: String, CodingKey { case imageID = "image_id", predicted, probabilities, label }
}

/// The outcome of a prediction run.
public struct PredictSummary: Sendable {
    public var predictions: [SlidePrediction]
    /// Slides that could not be read: key and reason.
    public var skipped: [(key: String, reason: String)]
    /// Over the slides with a label; nil when none has one.
    public var metrics: ClassificationMetrics?
    public var runID: Int64
    public var classes: Int
    /// Slides whose label is outside the checkpoint's classes: predicted, but left out of the metrics (named in the log).
    public var labelsOutOfRange: [String] = []
}

/// Runs a checkpoint over slides of the index and exports one row per slide.
public enum Predictor {
    /// Predicts, writes `out` atomically and stores the predictions in the index.
    /// - Throws: `TrainingError` for bad options, an unusable checkpoint or database; unreadable slides are skipped, not fatal.
    ///
    /// Under mpirun (`comm` of several ranks) the slides are shared by a work queue; rank 0 alone writes the output,
    /// the report and the rows, and returns the summary (nil on the other ranks).
    public static func run(_ options: PredictOptions, comm: Communicator, log: (String) -> Void = { _ in }) throws -> PredictSummary? {
        var options = options
        var only: Set<String>?
        var ingestFailures: [(key: String, reason: String)] = []
        if let newSlides = options.newSlides {
            let ingested = try NewSlides.ingest(newSlides, checkpoint: options.checkpoint, db: &options.db, out: options.out, comm: comm, log: log)
            only = Set(ingested.keys)
            ingestFailures = ingested.failures.map { ($0.slide, $0.error) }
            // Every rank predicts exactly the new slides rank 0 ingested.
            let keys = try comm.broadcast(bytes: Array(try JSONEncoder().encode(ingested.keys)))
            only = Set(try JSONDecoder().decode([String].self, from: Data(keys)))
        }
        guard var summary = try predict(options, only: only, comm: comm, log: log) else { return nil }
        summary.skipped = ingestFailures + summary.skipped
        if options.format == .csv {
            // The run's report with these predictions (and heatmaps) beside the output: OUTSTEM.report.html.
            let url = URL(fileURLWithPath: options.out)
            let path = url.deletingLastPathComponent().appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".report.html").path
            do {
                try RunReport.load(runDirectory: runDirectory(of: options.checkpoint), predictions: options.out, heatmaps: options.heatmaps).write(to: path)
                log("report: \(path)")
            } catch { log("note: no report written (\(error))") }
        }
        return summary
    }

    /// One process (tests, callers without MPI).
    public static func run(_ options: PredictOptions, log: (String) -> Void = { _ in }) throws -> PredictSummary {
        try run(options, comm: .single, log: log)!
    }

    /// What a worker made of one slide (sent to rank 0 as JSON).
    struct SlideOutcome: Codable {
        var prediction: SlidePrediction?
        var slideID: Int64
        var skipped: String?
    }

    static func predict(_ options: PredictOptions, only: Set<String>?, comm: Communicator, log: (String) -> Void) throws -> PredictSummary? {
        try options.compute.validate()
        BLAS.configure()
        if options.compute.workers > 0 { Parallel.threads = options.compute.workers }
        if let note = BFloat16.resolve(options.compute.precision).note, comm.isRoot { log("note: \(note)") }
        if let note = OneDNN.note(for: BFloat16.resolve(options.compute.precision).precision), comm.isRoot { log(note) }
        guard FileManager.default.fileExists(atPath: options.checkpoint) else {
            throw TrainingError("\(options.checkpoint): no such checkpoint; give RUNDIR/checkpoints/best.safetensors or last.safetensors", kind: .missingFile)
        }
        let (info, state, _) = try Checkpoint.info(options.checkpoint)
        // Rank 0 writes the index; the others read an immutable snapshot taken before it writes again (see Trainer).
        var opened: PatchIndex?
        if comm.isRoot {
            opened = try PatchIndex.existing(at: options.db)
            if comm.size > 1 { try opened!.checkpointForReaders() }
        }
        try comm.barrier()
        let index = try opened ?? PatchIndex.immutableSnapshot(at: options.db)
        let tilingID = try matchingTiling(index: index, info: info)
        let data = try PatchDataset.load(index: index, dataset: info.dataset, tilingID: tilingID, scheme: info.splitScheme,
                                         maxGrid: info.maxGrid, oversize: info.oversize)
        let images = data.images.filter { image in
            if let only { return only.contains(image.key) }
            switch options.split {
            case .all: return true
            case .val: return options.valFold.map { image.fold == $0 } ?? (image.split == "val")
            case .train, .test: return image.split == options.split.rawValue
            }
        }
        guard !images.isEmpty else {
            throw TrainingError("\(options.db): no ingested slide of dataset '\(info.dataset)' is in split '\(options.split.rawValue)'\(options.valFold.map { " (fold \($0))" } ?? ""); choose another --split")
        }
        let method = ModelFactory.method(info, seed: 0, compute: options.compute, training: nil)
        _ = try Checkpoint.load(method.parts, from: options.checkpoint, optimizers: false)

        try comm.barrier()
        let model = UncheckedBox(method)
        var outcomes: [Int: SlideOutcome] = [:], position = 0
        // One worker thread per rank: a model's layers keep their activations, so it serves one slide at a time
        // (its kernels use the rank's compute threads).
        try WorkQueue.run(comm, threads: 1, next: {
            guard position < images.count else { return nil }
            position += 1
            return (position - 1, [])
        }, work: { i, _ in
            Array((try? JSONEncoder().encode(predictOne(images[i], method: model.value, info: info, options: options))) ?? Data())
        }, collect: { i, bytes in
            let outcome = (try? JSONDecoder().decode(SlideOutcome.self, from: Data(bytes)))
                ?? SlideOutcome(prediction: nil, slideID: images[i].slideID, skipped: "internal: unreadable result from a worker")
            if let reason = outcome.skipped, reason != "no patches" { log("skipped \(images[i].key): \(reason)") }
            outcomes[i] = outcome
            if outcomes.count % 50 == 0 { log("predicted \(outcomes.count)/\(images.count) slides") }
        })
        guard comm.isRoot else { return nil }
        var predictions: [SlidePrediction] = [], rows: [PredictionRow] = []
        var skipped: [(key: String, reason: String)] = []
        for i in images.indices {
            guard let outcome = outcomes[i] else { continue }
            if let prediction = outcome.prediction {
                predictions.append(prediction)
                rows.append(PredictionRow(slideID: outcome.slideID, predicted: prediction.predicted, probabilities: prediction.probabilities))
            } else {
                skipped.append((images[i].key, outcome.skipped ?? "unknown"))
            }
        }
        try write(predictions, classes: info.classes, format: options.format, to: options.out)
        if options.heatmaps != nil && info.method != .patchgd { log("note: heatmaps need a PatchGD checkpoint (they score Z's cells); this one is GD, so none were written") }

        let runID: Int64
        if let id = state.runID, let run = try index.run(id: id), run.method == info.method.rawValue, try index.runID(directory: runDirectory(of: options.checkpoint)) == id {
            runID = id
        } else {
            runID = try index.beginRun(datasetID: data.datasetID, name: "predict \((options.checkpoint as NSString).lastPathComponent)",
                                       directory: runDirectory(of: options.checkpoint), method: info.method.rawValue,
                                       paramsJSON: "{\"checkpoint\":\"\(absolute(options.checkpoint))\"}")
            try index.finishRun(id: runID, status: "done")
        }
        try index.savePredictions(runID: runID, rows)
        let outOfRange = predictions.filter { p in p.label.map { $0 < 0 || $0 >= info.classes } ?? false }
        if !outOfRange.isEmpty {
            log("note: \(outOfRange.count) slide\(outOfRange.count == 1 ? " has a label" : "s have labels") outside the checkpoint's \(info.classes) classes (0...\(info.classes - 1)) and \(outOfRange.count == 1 ? "is" : "are") left out of the metrics: \(outOfRange.prefix(10).map { "\($0.imageID) (label \($0.label!))" }.joined(separator: ", "))")
        }
        let labelled = predictions.filter { p in p.label.map { $0 >= 0 && $0 < info.classes } ?? false }
        let metrics = labelled.isEmpty ? nil : ClassificationMetrics(actual: labelled.map { $0.label! }, predicted: labelled.map(\.predicted), classes: info.classes)
        var summary = PredictSummary(predictions: predictions, skipped: skipped, metrics: metrics, runID: runID, classes: info.classes)
        summary.labelsOutOfRange = outOfRange.map(\.imageID)
        return summary
    }

    /// One slide's prediction (and heatmap), or why it was skipped.
    static func predictOne(_ image: TrainingImage, method: TrainingMethod, info: CheckpointInfo, options: PredictOptions) -> SlideOutcome {
        guard FileManager.default.fileExists(atPath: image.path) else {
            return SlideOutcome(prediction: nil, slideID: image.slideID, skipped: "\(image.path): slide file missing (moved or deleted since ingest?)")
        }
        if image.grid.cells.isEmpty && info.method == .patchgd { return SlideOutcome(prediction: nil, slideID: image.slideID, skipped: "no patches") }
        do {
            let logits: Tensor
            if let folder = options.heatmaps, let patchGD = method as? PatchGDMethod {
                let loss = info.loss
                let explained = try patchGD.explain(image, target: { loss == .ce ? loss.predictions($0)[0] : -1 }, occlusion: options.occlusion)
                logits = explained.logits
                try Heatmaps.write(image, scores: explained.scores, occlusion: explained.occlusion, to: folder)
            } else {
                logits = try method.logits([image])
            }
            let prediction = SlidePrediction(imageID: image.key, predicted: info.loss.predictions(logits)[0],
                                             probabilities: info.loss.probabilities(logits)[0], label: image.label)
            return SlideOutcome(prediction: prediction, slideID: image.slideID, skipped: nil)
        } catch {
            return SlideOutcome(prediction: nil, slideID: image.slideID, skipped: "\(error)")
        }
    }

    /// The run directory a checkpoint belongs to (RUNDIR/checkpoints/x.safetensors -> RUNDIR).
    static func runDirectory(of checkpoint: String) -> String {
        absolute(((checkpoint as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent)
    }

    /// The tiling of the index with the checkpoint's parameters (its id may differ in another index).
    static func matchingTiling(index: PatchIndex, info: CheckpointInfo) throws -> Int64 {
        guard let datasetID = try index.existingDatasetID(named: info.dataset) else {
            throw TrainingError("\(index.path): no dataset '\(info.dataset)' (the checkpoint's); ingest the slides into it with the same parameters")
        }
        if let same = try index.tiling(datasetID: datasetID, matchingParams: info.tilingParams, identity: info.tilingIdentity) { return same }
        throw TrainingError("\(index.path): dataset '\(info.dataset)' has no tiling with the checkpoint's parameters (\(info.tilingParams)); ingest with the same preset and options")
    }

    /// Writes predictions as CSV (image_id, predicted, prob_0..prob_{K-1}, label), JSON, or PANDA's image_id,isup_grade.
    public static func write(_ predictions: [SlidePrediction], classes: Int, format: PredictionFormat, to path: String) throws {
        let text: String
        switch format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            text = String(decoding: try encoder.encode(predictions), as: UTF8.self) + "\n"
        case .panda:
            text = (["image_id,isup_grade"] + predictions.map { "\(csvField($0.imageID)),\($0.predicted)" }).joined(separator: "\n") + "\n"
        case .csv:
            let header = ["image_id", "predicted"] + (0 ..< classes).map { "prob_\($0)" } + ["label"]
            let lines = predictions.map { p in
                ([csvField(p.imageID), String(p.predicted)] + p.probabilities.map { String(format: "%.6f", $0) } + [p.label.map(String.init) ?? ""])
                    .joined(separator: ",")
            }
            text = ([header.joined(separator: ",")] + lines).joined(separator: "\n") + "\n"
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try atomicWrite(text, to: path)
    }

    static func csvField(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}

/// Carries a value the caller guarantees is used by one thread at a time into concurrent code.
final class UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
