import Cluster
import Foundation
import NN
import PatchIndex
import Report
import Seeded
import Stain

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
    /// The schedule's epochs; `epochs.count` is smaller when the run stopped early.
    public var scheduledEpochs: Int
    /// Stopped at `--time-limit` before the schedule's end (resumable with `--resume`).
    public var stoppedAtTimeLimit: Bool
}

/// Runs `gigapatch-train`: loads the dataset from the patch index, trains PatchGD or GD, validates every epoch,
/// and commits each epoch's checkpoints and metrics to the run directory. The loop asks `TrainingSchedule` what each
/// mini-batch is (learning rate, view, examples) and `RunDirectory` where things go.
///
/// Determinism: every random choice (batch order, patch order, augmentation, dropout) is drawn from a generator
/// derived from (seed, epoch, batch), never from a running stream, so a run resumed from the checkpoint of epoch e
/// continues exactly as the uninterrupted run would (same thread count). An interrupted epoch is redone from its start.
public final class Trainer {
    public let options: TrainConfig
    let log: (String) -> Void
    let progress: ((TrainProgress) -> Void)?
    /// Test hook: "R:E" makes rank R fail at the start of epoch E (1-based), so tests can check that one rank's
    /// error stops the whole job with its message and leaves the last checkpoint intact.
    public static let faultRankVariable = "GIGAPATCH_FAULT_FAIL_RANK"
    /// Tests: stop (as if interrupted) after this many epochs have been checkpointed in this invocation.
    var stopAfterEpochs: Int?
    /// Tests: called at each step of an epoch's commit with the epoch number; throwing there is a kill at that point.
    var commitFault: ((RunDirectory.CommitPoint, Int) throws -> Void)?
    /// Seconds on a monotonic clock; `--time-limit` measures this invocation with it.
    var clock: () -> Double = { ProcessInfo.processInfo.systemUptime }

    /// The ranks of a data-parallel run (`.single`: this process alone). See `DataParallel`.
    let comm: Communicator
    let parallel: DataParallel

    public init(options: TrainConfig, log: @escaping (String) -> Void = { _ in }, progress: ((TrainProgress) -> Void)? = nil,
                communicator: Communicator = .single) {
        self.options = options
        self.comm = communicator
        parallel = DataParallel(comm: communicator)
        self.log = log
        self.progress = progress
    }

    var directory: RunDirectory { RunDirectory(root: options.out) }
    var lastPath: String { directory.lastPath }

    /// Trains; with `resume`, continues the run in `--out` from its last checkpoint.
    /// - Throws: `TrainingError` (bad options, empty splits, non-finite loss, ...), slide and weight errors naming the file.
    public func run(resume: Bool = false) throws -> TrainSummary {
        let started = clock()
        try options.validateForRun()
        BLAS.configure()
        if options.workers > 0 { Parallel.threads = options.workers }
        if let note = BFloat16.resolve(options.compute.precision).note, comm.isRoot { log("note: \(note)") }
        if let note = OneDNN.note(for: BFloat16.resolve(options.compute.precision).precision), comm.isRoot { log(note) }
        // Rank 0 alone writes the index; the other ranks read an immutable snapshot of it (safe on network
        // filesystems), after rank 0 has folded its WAL in and before it writes again.
        var opened: PatchIndex?
        if comm.isRoot {
            let index = try PatchIndex.existing(at: options.db)
            let abandoned = try index.markAbandonedRunsInterrupted()
            if !abandoned.isEmpty { log("note: \(abandoned.count) run\(abandoned.count == 1 ? "" : "s") left running by a process that is gone marked interrupted") }
            if parallel.isActive { try index.checkpointForReaders() }
            opened = index
        }
        try comm.barrier()
        let index = try opened ?? PatchIndex.immutableSnapshot(at: options.db)
        let data = try PatchDataset.load(index: index, dataset: options.dataset, tilingID: options.tiling, scheme: options.splitScheme,
                                         maxGrid: options.maxGrid, oversize: options.oversize)
        for note in data.notes { log("note: \(note)") }
        let (train, val) = try splitImages(data)
        let classes = options.classes ?? max(2, ((train + val).compactMap(\.label).max() ?? 1) + 1)
        if let bad = (train + val).first(where: { ($0.label ?? 0) >= classes }) {
            throw TrainingError("\(options.db): slide \(bad.key) has label \(bad.label!) but --classes is \(classes)", kind: .badData)
        }
        let stain = try options.stainNormalize.map { try StainTarget.load(path: $0) }
        if let stain { log("stain normalisation: \(stain.summary)") }
        var info = CheckpointInfo(method: options.method, backbone: options.backbone, latent: options.latent, headFeatures: options.headFeatures,
                                  headDropout: options.headDropout, classes: classes, loss: options.loss,
                                  normalization: try options.model.normalizationValue(), patchSize: data.tiling.patchSize,
                                  imageSize: options.imageSize, maxGrid: options.maxGrid, oversize: options.oversize, dataset: data.datasetName,
                                  tilingID: data.tiling.id, tilingParams: data.tiling.paramsJSON, tilingIdentity: data.tiling.identity,
                                  splitScheme: options.splitScheme,
                                  selectBy: options.selectBy, headStrides: options.headStrides)
        info.stain = stain
        let mpps = try index.micronsPerPixel(datasetID: data.datasetID)
        let known = train.compactMap { mpps[$0.key] ?? nil }.sorted()
        info.trainingMPP = known.isEmpty ? nil : known[known.count / 2]
        try comm.barrier()
        let run = directory
        if comm.isRoot { try run.prepare(resume: resume, options: options) }
        let method = ModelFactory.method(info, seed: options.seed, compute: options.compute, training: TrainingSetup(options))
        var state = TrainerState(epochsDone: 0, bestScore: nil, bestEpoch: nil, runID: nil)
        var history: [EpochMetrics] = []
        if comm.isRoot {
            if resume {
                state = try run.resume(method.parts)
                history = try run.history().filter { $0.epoch <= state.epochsDone }
                log("resuming \(run.root) after epoch \(state.epochsDone) of \(options.epochs)")
            } else if let initial = options.initWeights {
                try Self.initialise(method.parts[0].model, from: initial)
                log("backbone initialised from \(initial) (final projection kept new)")
                if options.warmup == nil { log("warm-up: 1 epoch, the default with --init (--warmup 0 turns it off)") }
            }
            state.runID = try run.beginRun(index: index, datasetID: data.datasetID, state: state, options: options)
        }
        try parallel.broadcast(method.parts, state: &state)
        let ranks = parallel.isActive ? ", \(comm.size) ranks (\(comm.launcher ?? "mpi"))" : ""
        log("\(options.method.rawValue) \(options.backbone): \(train.count) training and \(val.count) validation slides, \(classes) classes, tiling \(data.tiling.id) (\(data.tiling.patchSize) px patches)\(ranks)")
        let runID = state.runID
        var epochs = options.epochs, stoppedAtTimeLimit = false
        do {
            (epochs, stoppedAtTimeLimit) = try trainEpochs(method, train: train, val: val, info: info, run: run, state: &state,
                                                           history: &history, started: started)
            if comm.isRoot, let runID {
                try index.finishRun(id: runID, status: state.epochsDone >= epochs ? "done" : "interrupted")
                Self.writeReport(runDirectory: run.root, log: log)
            }
        } catch {
            if comm.isRoot, let runID { try? index.finishRun(id: runID, status: "failed", error: "\(error)") }
            throw error
        }
        return TrainSummary(runDirectory: run.root, epochs: history, bestEpoch: state.bestEpoch, bestScore: state.bestScore,
                            lastCheckpoint: run.lastPath, bestCheckpoint: state.bestEpoch == nil ? nil : run.bestPath,
                            scheduledEpochs: epochs, stoppedAtTimeLimit: stoppedAtTimeLimit)
    }

    /// Writes RUNDIR/report.html (learning curves, confusion matrix, provenance); a failure is reported, not fatal.
    static func writeReport(runDirectory: String, log: (String) -> Void) {
        let path = (runDirectory as NSString).appendingPathComponent("report.html")
        do {
            try RunReport.load(runDirectory: runDirectory).write(to: path)
            log("report: \(path)")
        } catch { log("note: no report written (\(error))") }
    }

    /// Loads initial backbone weights: a file of the backbone's own tensors (torchvision names), or a Gigapatch
    /// checkpoint, whose `backbone.*` tensors are the backbone's (a GD checkpoint's, or a PatchGD one's encoder). The
    /// final projection (`fc.`, `classifier.`) is left as initialised: its size is the task's.
    static func initialise(_ model: Model, from path: String) throws {
        let (tensors, _) = try Safetensors.read(path)
        let prefix = tensors.keys.contains { $0.hasPrefix("backbone.") } ? "backbone." : ""
        try model.load(tensors, prefix: prefix, path: path, skipping: ["fc.", "classifier."])
    }

    /// Training and validation images: by fold when `--val-fold` is set, else by split name. Unlabelled slides do not train.
    func splitImages(_ data: PatchDataset) throws -> (train: [TrainingImage], val: [TrainingImage]) {
        let usable = data.images.filter { !$0.grid.cells.isEmpty }
        let patchless = data.images.filter { $0.grid.cells.isEmpty }.map(\.key)
        if !patchless.isEmpty {
            log("note: \(patchless.count) slide\(patchless.count == 1 ? "" : "s") without patches left out: \(patchless.prefix(10).joined(separator: ", "))\(patchless.count > 10 ? ", ..." : "")")
        }
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
            throw TrainingError("\(options.db): no labelled training slides in dataset '\(data.datasetName)' (split scheme '\(options.splitScheme)'\(options.valFold.map { ", validation fold \($0)" } ?? ""); slides per split: \(seen)); give the manifest a split column or run gigapatch-split", kind: .badData)
        }
        return (train, val)
    }

    /// Trains from `state.epochsDone` to the end of the schedule (or `stopAfterEpochs`, or the epoch before
    /// `--time-limit` would pass, counted from `started`); returns the schedule's epoch count and whether the time
    /// limit stopped it.
    private func trainEpochs(_ method: TrainingMethod, train: [TrainingImage], val: [TrainingImage], info: CheckpointInfo, run: RunDirectory,
                             state: inout TrainerState, history: inout [EpochMetrics], started: Double) throws -> (epochs: Int, stoppedAtTimeLimit: Bool) {
        let schedule = try TrainingSchedule(options: options, trainCount: train.count)
        let badPatches = BadPatchLog()
        method.recordBadPatches(in: badPatches)
        let totalPatches = (train + val).reduce(0) { $0 + $1.grid.cells.count }
        let stepper = StepHook(method: method, clip: options.clip.map { Float($0) }, parallel: parallel)
        if let c = schedule.curriculum {
            log("curriculum: \(c.stages.count) stages of equal compute, \(c.batches.map(String.init).joined(separator: "/")) mini-batches at \(c.stages.map { "\($0.resolution)" }.joined(separator: "/")) px (224 scale), \(schedule.epochs) epochs")
        }
        let keptMessage = { (done: Int) in "The last good checkpoint \(done > 0 ? run.lastPath + " (epoch \(done))" : "(none yet)") is kept; lower --lr or set --clip" }
        var epochsThisRun = 0, longestEpoch: Double?
        let fault = ProcessInfo.processInfo.environment[Self.faultRankVariable]?.split(separator: ":").compactMap { Int($0) }
        for epoch in state.epochsDone ..< schedule.epochs {
            if let limit = options.timeLimit {
                // Every rank stops if any would: their clocks differ a little, and all must leave the loop together.
                var over = limit.allowsEpoch(elapsed: clock() - started, longestEpoch: longestEpoch) ? 0.0 : 1.0
                if parallel.isActive { over = try parallel.sum([over])[0] }
                if over > 0 {
                    let spent = TimeLimit(seconds: clock() - started), longest = TimeLimit(seconds: longestEpoch ?? 0)
                    log("time limit \(limit) reached: stopped after epoch \(epoch) of \(schedule.epochs) (\(spent) spent, an epoch takes up to \(longest)); continue with --resume --out \(run.root)")
                    return (schedule.epochs, true)
                }
            }
            let epochStarted = clock()
            let reducedBefore = parallel.clock.seconds
            if let fault, fault.count == 2, fault[0] == comm.rank, fault[1] == epoch + 1 {
                throw TrainingError("fault injected by \(Self.faultRankVariable) at epoch \(epoch + 1)", kind: .other)
            }
            let start = Date()
            let order = schedule.order(epoch: epoch, count: train.count)
            let batches = schedule.batches(inEpoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0, units = 0
            for b in 0 ..< batches {
                let g = epoch * schedule.batchesPerEpoch + b
                stepper.factor = schedule.learningRateFactor(at: g)
                let batch = order[b * options.batchSize ..< min(order.count, (b + 1) * options.batchSize)].map { train[$0] }
                // This rank's share of the mini-batch (all of it in one process).
                let range = parallel.share(of: batch.count)
                let images = Array(batch[range]), labels = images.map { $0.label! }
                stepper.weight = Float(images.count) / Float(batch.count)
                let (value, logits) = try method.train(images, labels: labels, epoch: epoch, batch: b, view: schedule.view(at: g),
                                                       share: BatchShare(offset: range.lowerBound, largestCells: batch.map(\.grid.cells.count).max() ?? 0))
                if let failure = stepper.failure { throw failure }
                // The share's loss sum, correct predictions and unreadable patches, summed over the ranks.
                var tally = [Double(value) * Double(images.count), Double(zip(options.loss.predictions(logits), labels).filter { $0 == $1 }.count),
                             Double(method.workUnits(images)), Double(badPatches.count)]
                if parallel.isActive { tally = try parallel.sum(tally) }
                if !tally[0].isFinite || stepper.nonFinite || !method.parts.allSatisfy({ $0.model.store.valuesAreFinite() }) {
                    throw TrainingError("non-finite loss (\(tally[0] / Double(batch.count))) at epoch \(epoch + 1), batch \(b + 1) (slides \(batch.map(\.key).joined(separator: ", "))); stopped. \(keptMessage(state.epochsDone))", kind: .diverged)
                }
                if tally[3] > options.maxBadPatches * Double(totalPatches) {
                    // Every rank is here (the tally is summed): the list is every rank's, written once.
                    if let all = try gathered(badPatches) { try? atomicWrite(all.csv, to: run.badPatchesPath) }
                    throw TrainingError("\(Int(tally[3])) of the run's \(totalPatches) patches could not be read (more than --max-bad-patches \(options.maxBadPatches)); they are listed in \(run.badPatchesPath). Check those slides with gigapatch-inspect, re-scan or drop them, or raise --max-bad-patches", kind: .badData)
                }
                lossSum += tally[0]
                correct += Int(tally[1])
                seen += batch.count
                units += Int(tally[2])
                let elapsed = Date().timeIntervalSince(start)
                progress?(TrainProgress(epoch: epoch + 1, epochs: schedule.epochs, batch: b + 1, batches: batches,
                                        loss: lossSum / Double(seen), rate: Double(units) / max(elapsed, 1e-9), elapsed: elapsed))
            }
            let end = epoch * schedule.batchesPerEpoch + batches
            var metrics = EpochMetrics(epoch: epoch + 1, trainLoss: lossSum / Double(max(1, seen)), trainAccuracy: Double(correct) / Double(max(1, seen)),
                                       learningRate: Double(method.parts[0].optimizer?.groups[0].learningRate ?? 0), seconds: 0,
                                       patchesPerSecond: 0, peakRSSMB: 0)
            metrics.stageResolution = schedule.stage(at: end - 1)?.resolution
            metrics.compute = schedule.progress(at: end)
            if options.bnRecalibration > 0 && options.batchNorm == .train {
                // The first mini-batches of the next epoch's order (fixed by the seed), each rank its share.
                let next = schedule.order(epoch: epoch + 1, count: train.count)
                let batches = (0 ..< min(options.bnRecalibration, (next.count + options.batchSize - 1) / options.batchSize)).map { b in
                    let batch = next[b * options.batchSize ..< min(next.count, (b + 1) * options.batchSize)].map { train[$0] }
                    return Array(batch[parallel.share(of: batch.count)])
                }
                try method.recalibrate(batches)
            }
            // Each rank's running statistics followed its share: their mean validates and is checkpointed.
            try parallel.averageBuffers(method.parts)
            if !val.isEmpty, let evaluation = try evaluateSharded(method, val, classes: info.classes) {
                metrics.valLoss = evaluation.loss
                metrics.valAccuracy = evaluation.metrics.accuracy
                metrics.valKappa = evaluation.metrics.kappa
                metrics.valConfusion = evaluation.metrics.confusion
                guard evaluation.loss.isFinite else {
                    throw TrainingError("non-finite validation loss (\(evaluation.loss)) after epoch \(epoch + 1); stopped. \(keptMessage(state.epochsDone))", kind: .diverged)
                }
            }
            metrics.seconds = Date().timeIntervalSince(start)
            metrics.patchesPerSecond = Double(units) / max(1e-9, metrics.seconds)
            metrics.peakRSSMB = peakResidentMiB()
            if let all = try gathered(badPatches), all.count > 0 {
                metrics.badPatches = all.count
                try atomicWrite(all.csv, to: run.badPatchesPath)
            }
            if parallel.isActive {
                metrics.ranks = comm.size
                metrics.allReduceSeconds = parallel.clock.seconds - reducedBefore
            }
            if let counts = method.stain?.counts, counts.unchanged > 0 {
                log("stain normalisation so far: \(counts.normalized) patches normalised, \(counts.unchanged) left as they were (too little tissue, or one stain only)")
            }
            state.epochsDone = epoch + 1
            let score = options.selectBy == .accuracy ? metrics.valAccuracy : metrics.valKappa
            let improved = score.map { s in state.bestScore.map { s > $0 } ?? true } ?? false
            if improved {
                state.bestScore = score
                state.bestEpoch = epoch + 1
            }
            history.append(metrics)
            let epochNumber = epoch + 1
            if comm.isRoot {
                try run.commit(epoch: method.parts, info: info, state: state, improved: improved, history: history,
                               fault: commitFault.map { hook in { try hook($0, epochNumber) } })
                log(summaryLine(metrics, epochs: schedule.epochs, improved: improved))
            }
            // No rank starts the next epoch before this one's checkpoint is on disk: a failure later loses only that epoch.
            try comm.barrier()
            epochsThisRun += 1
            longestEpoch = max(longestEpoch ?? 0, clock() - epochStarted)
            if let stop = stopAfterEpochs, epochsThisRun >= stop, epoch + 1 < schedule.epochs { break }
        }
        return (schedule.epochs, false)
    }

    /// Every rank's unreadable patches in one log on rank 0 (nil on the others; the log itself in one process).
    /// Every rank must call it at the same point.
    func gathered(_ log: BadPatchLog) throws -> BadPatchLog? {
        guard parallel.isActive else { return log }
        guard let parts = try comm.gather(try log.encoded()) else { return nil }
        let all = BadPatchLog()
        for part in parts { try all.merge(encoded: part) }
        return all
    }

    /// `evaluate` with the images shared among the ranks; the metrics on rank 0, nil on the others.
    func evaluateSharded(_ method: TrainingMethod, _ images: [TrainingImage], classes: Int) throws -> (loss: Double, metrics: ClassificationMetrics)? {
        guard parallel.isActive else { let all = try evaluate(method, images, classes: classes); return (all.loss, all.metrics) }
        let mine = Array(images[parallel.share(of: images.count)])
        var predicted: [Int] = [], actual: [Int] = [], lossSum = 0.0
        if !mine.isEmpty {
            let local = try evaluate(method, mine, classes: classes)
            lossSum = local.loss * Double(mine.count)
            predicted = local.predicted
            actual = mine.map { $0.label! }
        }
        let part = ShardResult(lossSum: lossSum, predicted: predicted, actual: actual)
        guard let parts = try comm.gather(Array(try JSONEncoder().encode(part))) else { return nil }
        let all = try parts.map { try JSONDecoder().decode(ShardResult.self, from: Data($0)) }
        return (all.reduce(0) { $0 + $1.lossSum } / Double(images.count),
                ClassificationMetrics(actual: all.flatMap(\.actual), predicted: all.flatMap(\.predicted), classes: classes))
    }

    struct ShardResult: Codable { var lossSum: Double; var predicted: [Int]; var actual: [Int] }

    /// Loss and metrics on `images` in evaluation mode.
    func evaluate(_ method: TrainingMethod, _ images: [TrainingImage], classes: Int) throws -> (loss: Double, metrics: ClassificationMetrics, predicted: [Int]) {
        var predicted: [Int] = [], actual: [Int] = [], lossSum = 0.0
        for start in stride(from: 0, to: images.count, by: options.batchSize) {
            let batch = Array(images[start ..< min(images.count, start + options.batchSize)])
            let labels = batch.map { $0.label! }
            let logits = try method.logits(batch)
            lossSum += Double(options.loss.loss(logits, labels, smoothing: 0).loss) * Double(batch.count)
            predicted += options.loss.predictions(logits)
            actual += labels
        }
        return (lossSum / Double(images.count), ClassificationMetrics(actual: actual, predicted: predicted, classes: classes), predicted)
    }

    func summaryLine(_ m: EpochMetrics, epochs: Int, improved: Bool) -> String {
        var s = String(format: "epoch %d/%d: train loss %.4f acc %.3f", m.epoch, epochs, m.trainLoss, m.trainAccuracy)
        if let r = m.stageResolution { s += " (stage \(r) px)" }
        if let vl = m.valLoss, let va = m.valAccuracy, let vk = m.valKappa { s += String(format: " | val loss %.4f acc %.3f kappa %.3f", vl, va, vk) }
        s += String(format: " | %.0f s, %.0f patches/s, %.0f MiB", m.seconds, m.patchesPerSecond, m.peakRSSMB)
        if let ranks = m.ranks {
            s += String(format: " (%d ranks: %.0f patches/s each; rank 0: %.0f MiB, all-reduce %.1f s)", ranks, m.patchesPerSecond / Double(ranks),
                        m.peakRSSMB, m.allReduceSeconds ?? 0)
        }
        if let bad = m.badPatches { s += " | \(bad) unreadable patches read as background (bad-patches.csv)" }
        return improved ? s + " (best)" : s
    }
}

/// What happens just before every optimizer step: the schedule's learning rate applied to every parameter group,
/// gradient clipping, and a check that the gradients are finite.
final class StepHook {
    /// The schedule's factor for the current mini-batch (set by the loop before each step).
    var factor: Float = 1
    /// This rank's share of the mini-batch (images / batch): its gradients are scaled by it before the ranks' sum.
    var weight: Float = 1
    private(set) var nonFinite = false
    /// The all-reduce's error, if it failed (the hook cannot throw).
    private(set) var failure: Error?

    init(method: TrainingMethod, clip: Float?, parallel: DataParallel? = nil) {
        let parts = method.parts
        let baseRates = parts.map { part in part.optimizer?.groups.map(\.learningRate) ?? [] }
        method.beforeStep = { [self] in
            if let parallel, parallel.isActive {
                do { try parallel.sumGradients(parts, weight: self.weight) } catch { self.failure = self.failure ?? error }
            }
            for (p, part) in parts.enumerated() {
                if let optimizer = part.optimizer {
                    for g in optimizer.groups.indices { optimizer.groups[g].learningRate = baseRates[p][g] * self.factor }
                }
                if let clip { part.model.store.clipGradients(maxNorm: clip) }
                if !part.model.store.gradientNorm().isFinite { self.nonFinite = true }
            }
        }
    }
}

/// Peak resident memory of this process (VmHWM), in MiB.
public func peakResidentMiB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Double(line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0) / 1024
    }
    return 0
}
