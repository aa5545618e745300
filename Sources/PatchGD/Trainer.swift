import Foundation
import NN
import PatchIndex
import Seeded

/// One epoch's line in `metrics.jsonl` (and a row of `metrics.csv`).
public struct EpochMetrics: Sendable, Equatable, Codable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var valKappa: Double?
    public var valConfusion: [[Int]]?
    public var learningRate: Double
    public var seconds: Double
    public var patchesPerSecond: Double
    public var peakRSSMB: Double
    /// Curriculum: the resolution (224 scale) of the epoch's last stage.
    public var stageResolution: Int?
    /// Fraction of the run's compute spent by the end of the epoch.
    public var compute: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss", valAccuracy = "val_accuracy"
        case valKappa = "val_kappa", valConfusion = "val_confusion", learningRate = "lr", seconds
        case patchesPerSecond = "patches_per_s", peakRSSMB = "peak_rss_mb", stageResolution = "stage_resolution", compute
    }

    static let csvHeader = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_kappa,lr,seconds,patches_per_s,peak_rss_mb,compute,stage_resolution"

    var csvRow: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        return [String(epoch), f(trainLoss), f(trainAccuracy), f(valLoss), f(valAccuracy), f(valKappa), f(learningRate), f(seconds),
                f(patchesPerSecond), f(peakRSSMB), f(compute), stageResolution.map(String.init) ?? ""].joined(separator: ",")
    }
}

/// Progress within an epoch, for a terminal line.
public struct TrainProgress: Sendable {
    public var epoch: Int
    public var epochs: Int
    public var batch: Int
    public var batches: Int
    public var loss: Double
    /// Patches (PatchGD) or images (GD) per second in this epoch.
    public var rate: Double
    public var elapsed: Double
}

/// The outcome of a run.
public struct TrainSummary: Sendable {
    public var runDirectory: String
    public var epochs: [EpochMetrics]
    public var bestEpoch: Int?
    public var bestScore: Double?
    public var lastCheckpoint: String
    public var bestCheckpoint: String?
}

/// Runs `gigapatch-train`: loads the dataset from the patch index, trains PatchGD or GD, validates every epoch,
/// writes metrics and checkpoints to the run directory and records the run in the index.
///
/// Determinism: every random choice (batch order, patch order, augmentation, dropout) is drawn from a generator
/// derived from (seed, epoch, batch), never from a running stream, so a run resumed from the checkpoint of epoch e
/// continues exactly as the uninterrupted run would (same thread count). Checkpoints are written at the end of
/// every epoch; an interrupted epoch is redone from its start.
public final class Trainer {
    public let options: TrainOptions
    let log: (String) -> Void
    let progress: ((TrainProgress) -> Void)?
    /// Tests: stop (as if interrupted) after this many epochs have been checkpointed in this invocation.
    var stopAfterEpochs: Int?

    public init(options: TrainOptions, log: @escaping (String) -> Void = { _ in }, progress: ((TrainProgress) -> Void)? = nil) {
        self.options = options
        self.log = log
        self.progress = progress
    }

    var runDirectory: String { options.out }
    var checkpointDirectory: String { (options.out as NSString).appendingPathComponent("checkpoints") }
    var lastPath: String { (checkpointDirectory as NSString).appendingPathComponent("last.safetensors") }
    var bestPath: String { (checkpointDirectory as NSString).appendingPathComponent("best.safetensors") }
    var metricsPath: String { (options.out as NSString).appendingPathComponent("metrics.jsonl") }

    /// Trains; with `resume`, continues the run in `--out` from its last checkpoint.
    /// - Throws: `TrainingError` (bad options, empty splits, non-finite loss, ...), slide and weight errors naming the file.
    public func run(resume: Bool = false) throws -> TrainSummary {
        try options.validate()
        BLAS.configure()
        if options.workers > 0 { Parallel.threads = options.workers }
        let index = try PatchIndex.existing(at: options.db)
        let data = try PatchDataset.load(index: index, dataset: options.dataset, tilingID: options.tiling, scheme: options.splitScheme,
                                         maxGrid: options.maxGrid, oversize: options.oversize)
        for note in data.notes { log("note: \(note)") }
        let (train, val) = try splitImages(data)
        let classes = options.classes ?? max(2, ((train + val).compactMap(\.label).max() ?? 1) + 1)
        if let bad = (train + val).first(where: { ($0.label ?? 0) >= classes }) {
            throw TrainingError("\(options.db): slide \(bad.key) has label \(bad.label!) but --classes is \(classes)")
        }
        let loss = LossKind(rawValue: options.loss)!
        let info = CheckpointInfo(method: options.method, backbone: options.backbone, latent: options.latent, headFeatures: options.headFeatures,
                                  headDropout: options.headDropout, classes: classes, loss: loss, normalization: try options.normalizationValue(),
                                  patchSize: data.tiling.patchSize, imageSize: options.imageSize, maxGrid: options.maxGrid,
                                  oversize: options.oversize, dataset: data.datasetName, tilingID: data.tiling.id,
                                  tilingParams: data.tiling.paramsJSON, splitScheme: options.splitScheme, selectBy: options.selectBy)
        try prepareDirectory(resume: resume)
        let method = try Self.makeMethod(info: info, options: options)
        var state = TrainerState(epochsDone: 0, bestScore: nil, bestEpoch: nil, runID: nil)
        var history: [EpochMetrics] = []
        if resume {
            state = try Checkpoint.load(method.parts, from: lastPath, optimizers: true)
            history = try readHistory().filter { $0.epoch <= state.epochsDone }
            log("resuming \(runDirectory) after epoch \(state.epochsDone) of \(options.epochs)")
        } else if let initial = options.initWeights {
            try method.parts[0].model.load(from: initial, skipping: ["fc.", "classifier."])
            log("backbone initialised from \(initial) (final projection kept new)")
        }
        let runID: Int64
        if let existing = state.runID, (try? index.run(id: existing)) != nil {
            runID = existing
            try index.finishRun(id: runID, status: "running")
        } else {
            runID = try index.beginRun(datasetID: data.datasetID, name: (runDirectory as NSString).lastPathComponent,
                                       directory: absolute(runDirectory), method: options.method, paramsJSON: try options.json())
        }
        state.runID = runID
        log("\(options.method) \(options.backbone): \(train.count) training and \(val.count) validation slides, \(classes) classes, tiling \(data.tiling.id) (\(data.tiling.patchSize) px patches)")
        do {
            let epochs = try trainEpochs(method: method, train: train, val: val, info: info, loss: loss, classes: classes, state: &state, history: &history)
            let status = state.epochsDone >= epochs ? "done" : "interrupted"
            try index.finishRun(id: runID, status: status)
        } catch {
            try? index.finishRun(id: runID, status: "failed", error: "\(error)")
            throw error
        }
        return TrainSummary(runDirectory: runDirectory, epochs: history, bestEpoch: state.bestEpoch, bestScore: state.bestScore,
                            lastCheckpoint: lastPath, bestCheckpoint: state.bestEpoch == nil ? nil : bestPath)
    }

    /// Training and validation images: by fold when `--val-fold` is set, else by split name. Unlabelled slides do not train.
    func splitImages(_ data: PatchDataset) throws -> (train: [TrainingImage], val: [TrainingImage]) {
        let usable = data.images.filter { !$0.grid.cells.isEmpty }
        var train: [TrainingImage], val: [TrainingImage]
        if let fold = options.valFold {
            val = usable.filter { $0.fold == fold }
            train = usable.filter { $0.fold != nil && $0.fold != fold && $0.split != "test" }
        } else {
            val = usable.filter { $0.split == options.valSplit }
            train = usable.filter { $0.split == "train" }
        }
        let unlabelled = train.filter { $0.label == nil }.count
        if unlabelled > 0 { log("note: \(unlabelled) training slides have no label and are left out") }
        train = train.filter { $0.label != nil }
        val = val.filter { $0.label != nil }
        guard !train.isEmpty else {
            var counts: [String: Int] = [:]
            for image in usable { counts[image.split ?? "(none)", default: 0] += 1 }
            let seen = counts.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
            throw TrainingError("\(options.db): no labelled training slides in dataset '\(data.datasetName)' (split scheme '\(options.splitScheme)'\(options.valFold.map { ", validation fold \($0)" } ?? ""); slides per split: \(seen)); give the manifest a split column or run gigapatch-split")
        }
        return (train, val)
    }

    func prepareDirectory(resume: Bool) throws {
        let fm = FileManager.default
        if resume {
            guard fm.fileExists(atPath: lastPath) else {
                throw TrainingError("\(lastPath): no checkpoint to resume from; run without --resume to start \(runDirectory)")
            }
        } else if fm.fileExists(atPath: lastPath) {
            throw TrainingError("\(runDirectory) already holds a run (checkpoints/last.safetensors); continue it with --resume or choose another --out")
        }
        try fm.createDirectory(atPath: checkpointDirectory, withIntermediateDirectories: true)
        try atomicWrite(try options.json() + "\n", to: (runDirectory as NSString).appendingPathComponent("options.json"))
    }

    /// Builds models and optimizers for a checkpoint's description (weights freshly initialised from the seed).
    static func makeMethod(info: CheckpointInfo, options: TrainOptions) throws -> TrainingMethod {
        let outputs = info.loss.outputs(classes: info.classes)
        let kind: OptimizerKind
        switch options.optimizer {
        case "sgd": kind = .sgd(momentum: Float(options.momentum))
        case "adamw": kind = .adamW()
        default: kind = .adam()
        }
        let smoothing = Float(options.labelSmoothing), loss = info.loss
        let lossFunction = { (logits: Tensor, targets: [Int]) in loss.loss(logits, targets, smoothing: smoothing) }
        if info.method == "gd" {
            let model = Model.backbone(info.backbone, outputs: outputs, seed: options.seed)!
            let optimizer = Optimizer(kind, store: model.store, learningRate: Float(options.lr), weightDecay: Float(options.weightDecay))
            return GDMethod(model: model, optimizer: optimizer,
                            images: WholeImageReader(size: info.imageSize, normalization: info.normalization, capacity: 256),
                            seed: options.seed, loss: lossFunction)
        }
        let backbone = Model.backbone(info.backbone, outputs: info.latent, seed: options.seed)!
        let head = PatchGDHead.make(latent: info.latent, features: info.headFeatures, classes: outputs, dropout: Float(info.headDropout),
                                    seed: options.seed &+ 1)
        var config = PatchGDConfig(sampling: options.sampling, patchesPerStep: options.patchesPerStep, innerIterations: options.innerIterations,
                                   accumulate: options.gradAccumulation)
        config.fillStatistics = options.fillStatistics
        let core = PatchGD(backbone: backbone, head: head, config: config,
                           backboneOptimizer: Optimizer(kind, store: backbone.store, learningRate: Float(options.lr), weightDecay: Float(options.weightDecay)),
                           headOptimizer: Optimizer(kind, store: head.store, learningRate: Float(options.headLR ?? options.lr), weightDecay: Float(options.weightDecay)))
        core.fillChunk = options.fillChunk
        let reader = PatchReader(patchSize: info.patchSize, normalization: info.normalization, cacheCapacity: options.cacheSize)
        return PatchGDMethod(core: core, reader: reader, seed: options.seed, loss: lossFunction)
    }

    /// The learning-rate factor at `progress` (0 ..< 1, the fraction of the run's compute spent) with a warm-up over
    /// the first `warmup` fraction. The position is compute, not epochs, so a curriculum's cheap low-resolution
    /// stages advance it less per mini-batch and the schedule runs continuously across stages.
    static func lrFactor(schedule: String, progress: Double, warmup: Double) -> Float {
        if progress < warmup { return Float(min(1, (progress + 1e-12) / warmup)) }
        let t = warmup < 1 ? (progress - warmup) / (1 - warmup) : 1
        switch schedule {
        case "cosine": return Float(0.5 * (1 + cos(Double.pi * min(1, t))))
        case "linear": return Float(max(0, 1 - t))
        case "step": return Float(pow(0.1, Double(min(2, Int(t * 3)))))
        default: return 1
        }
    }

    /// Where the run goes: mini-batches per epoch, epochs, and per global mini-batch its stage and schedule position.
    struct Plan {
        let batchesPerEpoch: Int
        let totalBatches: Int
        let curriculum: Curriculum?
        let subset: SubsetSampler?
        var epochs: Int { (totalBatches + batchesPerEpoch - 1) / batchesPerEpoch }

        init(options: TrainOptions, trainCount: Int) throws {
            let perEpoch = options.subsetFraction.map { SubsetSampler(count: trainCount, fraction: $0, seed: options.seed) }
            subset = perEpoch
            let examples = perEpoch?.perEpoch ?? trainCount
            let full = (examples + options.batchSize - 1) / options.batchSize
            batchesPerEpoch = min(full, options.limitBatches ?? full)
            if let stages = try options.curriculumStageList() {
                let c = Curriculum(stages: stages, epochs: options.epochs, batchesPerEpoch: batchesPerEpoch)
                curriculum = c
                totalBatches = c.totalBatches
            } else {
                curriculum = nil
                totalBatches = options.epochs * batchesPerEpoch
            }
        }

        func progress(at g: Int) -> Double { curriculum?.progress(at: g) ?? Double(g) / Double(max(1, totalBatches)) }
        func stage(at g: Int) -> CurriculumStage? { curriculum.map { $0.stages[$0.stageIndex(at: g)] } }

        /// Training examples of an epoch in order: a fresh permutation, or RS2's next slice.
        func order(epoch: Int, count: Int, seed: UInt64) -> [Int] {
            if let subset { return subset.epoch(epoch) }
            var order = Array(0 ..< count)
            var rng = SplitMix64(seed: seed).derived(2, UInt64(epoch))
            order.shuffle(using: &rng)
            return order
        }
    }

    /// Trains from `state.epochsDone` to the end of the plan (or `stopAfterEpochs`); returns the plan's epoch count.
    private func trainEpochs(method: TrainingMethod, train: [TrainingImage], val: [TrainingImage], info: CheckpointInfo, loss: LossKind,
                             classes: Int, state: inout TrainerState, history: inout [EpochMetrics]) throws -> Int {
        let batchSize = options.batchSize
        let plan = try Plan(options: options, trainCount: train.count)
        // Warm-up is given in epochs of the plain run; as a fraction of the compute it is the same with a curriculum.
        let warmup = min(1, options.warmup / Double(options.epochs))
        let baseRates = method.parts.map { part in part.optimizer.groups.map(\.learningRate) }
        var position = 0, currentFactor: Float = 1
        let clip = options.clip.map { Float($0) }
        var nonFinite = false
        method.beforeStep = { [options] in
            currentFactor = Self.lrFactor(schedule: options.schedule, progress: plan.progress(at: position), warmup: warmup)
            for (p, part) in method.parts.enumerated() {
                for g in part.optimizer.groups.indices { part.optimizer.groups[g].learningRate = baseRates[p][g] * currentFactor }
                if let clip { part.model.store.clipGradients(maxNorm: clip) }
                if !part.model.store.gradientNorm().isFinite { nonFinite = true }
            }
        }
        let baseAugmentation = options.augment ? AugmentationSettings(colorJitter: options.colorJitter) : .none
        if let c = plan.curriculum {
            log("curriculum: \(c.stages.count) stages of equal compute, \(c.batches.map(String.init).joined(separator: "/")) mini-batches at \(c.stages.map { "\($0.resolution)" }.joined(separator: "/")) px (224 scale), \(plan.epochs) epochs")
        }
        var epochsThisRun = 0
        for epoch in state.epochsDone ..< plan.epochs {
            let start = Date()
            let order = plan.order(epoch: epoch, count: train.count, seed: options.seed)
            let batches = min(plan.batchesPerEpoch, plan.totalBatches - epoch * plan.batchesPerEpoch)
            var lossSum = 0.0, correct = 0, seen = 0, units = 0
            var stageSeen: CurriculumStage?
            for b in 0 ..< batches {
                position = epoch * plan.batchesPerEpoch + b
                let images = order[b * batchSize ..< min(order.count, (b + 1) * batchSize)].map { train[$0] }
                let labels = images.map { $0.label! }
                var view = TrainingView(side: nil, lowPass: options.lowPass, augmentation: baseAugmentation)
                if let stage = plan.stage(at: position) {
                    stageSeen = stage
                    view.side = stage.resolution < 224 ? stage.resolution : nil
                    view.augmentation = baseAugmentation.scaled(magnitude: stage.magnitude, of: plan.curriculum!.stages.map(\.magnitude).max() ?? 0)
                }
                let (value, logits) = try method.train(images, labels: labels, epoch: epoch, batch: b, view: view)
                if !value.isFinite || nonFinite || !method.parts.allSatisfy({ $0.model.store.valuesAreFinite() }) {
                    throw TrainingError("non-finite loss (\(value)) at epoch \(epoch + 1), batch \(b + 1) (slides \(images.map(\.key).joined(separator: ", "))); stopped. The last good checkpoint \(state.epochsDone > 0 ? lastPath + " (epoch \(state.epochsDone))" : "(none yet)") is kept; lower --lr or set --clip")
                }
                lossSum += Double(value) * Double(images.count)
                correct += zip(loss.predictions(logits), labels).filter { $0 == $1 }.count
                seen += images.count
                units += method.workUnits(images)
                let elapsed = Date().timeIntervalSince(start)
                progress?(TrainProgress(epoch: epoch + 1, epochs: plan.epochs, batch: b + 1, batches: batches,
                                        loss: lossSum / Double(seen), rate: Double(units) / max(elapsed, 1e-9), elapsed: elapsed))
            }
            var metrics = EpochMetrics(epoch: epoch + 1, trainLoss: lossSum / Double(max(1, seen)), trainAccuracy: Double(correct) / Double(max(1, seen)),
                                       learningRate: Double(method.parts[0].optimizer.groups[0].learningRate), seconds: 0,
                                       patchesPerSecond: 0, peakRSSMB: 0)
            metrics.stageResolution = stageSeen?.resolution
            metrics.compute = plan.progress(at: epoch * plan.batchesPerEpoch + batches)
            if !val.isEmpty {
                let evaluation = try evaluate(method, val, loss: loss, classes: classes)
                metrics.valLoss = evaluation.loss
                metrics.valAccuracy = evaluation.metrics.accuracy
                metrics.valKappa = evaluation.metrics.kappa
                metrics.valConfusion = evaluation.metrics.confusion
                guard evaluation.loss.isFinite else {
                    throw TrainingError("non-finite validation loss (\(evaluation.loss)) after epoch \(epoch + 1); stopped. The last good checkpoint \(state.epochsDone > 0 ? lastPath + " (epoch \(state.epochsDone))" : "(none yet)") is kept; lower --lr or set --clip")
                }
            }
            metrics.seconds = Date().timeIntervalSince(start)
            metrics.patchesPerSecond = Double(units) / max(1e-9, metrics.seconds)
            metrics.peakRSSMB = peakResidentMiB()
            state.epochsDone = epoch + 1
            let score = options.selectBy == "accuracy" ? metrics.valAccuracy : metrics.valKappa
            let improved = score.map { s in state.bestScore.map { s > $0 } ?? true } ?? false
            if improved {
                state.bestScore = score
                state.bestEpoch = epoch + 1
                try Checkpoint.save(method.parts, info: info, state: state, to: bestPath)
            }
            try Checkpoint.save(method.parts, info: info, state: state, to: lastPath)
            history.append(metrics)
            try writeHistory(history)
            log(summaryLine(metrics, epochs: plan.epochs, improved: improved))
            epochsThisRun += 1
            if let stop = stopAfterEpochs, epochsThisRun >= stop, epoch + 1 < plan.epochs { break }
        }
        return plan.epochs
    }

    /// Loss and metrics on `images` in evaluation mode.
    func evaluate(_ method: TrainingMethod, _ images: [TrainingImage], loss: LossKind, classes: Int) throws -> (loss: Double, metrics: ClassificationMetrics) {
        var predicted: [Int] = [], actual: [Int] = [], lossSum = 0.0
        for start in stride(from: 0, to: images.count, by: options.batchSize) {
            let batch = Array(images[start ..< min(images.count, start + options.batchSize)])
            let labels = batch.map { $0.label! }
            let logits = try method.logits(batch)
            lossSum += Double(loss.loss(logits, labels, smoothing: 0).loss) * Double(batch.count)
            predicted += loss.predictions(logits)
            actual += labels
        }
        return (lossSum / Double(images.count), ClassificationMetrics(actual: actual, predicted: predicted, classes: classes))
    }

    func summaryLine(_ m: EpochMetrics, epochs: Int, improved: Bool) -> String {
        var s = String(format: "epoch %d/%d: train loss %.4f acc %.3f", m.epoch, epochs, m.trainLoss, m.trainAccuracy)
        if let r = m.stageResolution { s += " (stage \(r) px)" }
        if let vl = m.valLoss, let va = m.valAccuracy, let vk = m.valKappa { s += String(format: " | val loss %.4f acc %.3f kappa %.3f", vl, va, vk) }
        s += String(format: " | %.0f s, %.0f patches/s, %.0f MiB", m.seconds, m.patchesPerSecond, m.peakRSSMB)
        return improved ? s + " (best)" : s
    }

    func readHistory() throws -> [EpochMetrics] {
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
    }

    /// Rewrites metrics.jsonl and metrics.csv atomically from the whole history.
    func writeHistory(_ history: [EpochMetrics]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let lines = try history.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try atomicWrite(lines.joined(separator: "\n") + "\n", to: metricsPath)
        try atomicWrite(([EpochMetrics.csvHeader] + history.map(\.csvRow)).joined(separator: "\n") + "\n",
                        to: (runDirectory as NSString).appendingPathComponent("metrics.csv"))
    }
}

/// Writes text to `path` through a temporary file and a rename.
func atomicWrite(_ text: String, to path: String) throws {
    do { try AtomicFile.write(Data(text.utf8), to: path) } catch {
        throw TrainingError("\(path): cannot write (\(error)); check the folder is writable")
    }
}

/// An absolute, standardised path.
func absolute(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}
