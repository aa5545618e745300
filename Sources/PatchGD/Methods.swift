import Foundation
import NN
import Stain
import Seeded
import SlideIO

/// How logits become a loss, classes and probabilities: softmax cross-entropy or cumulative (ordinal) bins.
public enum LossKind: String, Sendable, Codable, CaseIterable {
    case ce, ordinal

    /// Outputs the model needs for `classes` classes (K for cross-entropy, K - 1 cumulative bins for ordinal).
    public func outputs(classes: Int) -> Int { self == .ce ? classes : classes - 1 }

    func loss(_ logits: Tensor, _ targets: [Int], smoothing: Float) -> LossResult {
        self == .ce ? CrossEntropy.compute(logits: logits, targets: targets, labelSmoothing: smoothing)
                    : OrdinalLoss.cumulativeBCE(logits: logits, targets: targets)
    }

    /// Class probabilities per example: softmax, or differences of the cumulative probabilities P(y > k) = sigmoid(z_k).
    public func probabilities(_ logits: Tensor) -> [[Double]] {
        let n = logits.shape[0], m = logits.count / max(1, n), p = logits.pointer
        return (0 ..< n).map { i in
            let z = (0 ..< m).map { Double(p[i * m + $0]) }
            switch self {
            case .ce:
                let top = z.max() ?? 0
                let e = z.map { exp($0 - top) }
                let sum = e.reduce(0, +)
                return e.map { $0 / sum }
            case .ordinal:
                // Cumulative probabilities are made non-increasing before differencing, so every class probability is >= 0.
                var above = z.map { 1 / (1 + exp(-$0)) }
                for k in above.indices.dropFirst() { above[k] = min(above[k], above[k - 1]) }
                return (0 ... m).map { k in (k == 0 ? 1 : above[k - 1]) - (k == m ? 0 : above[k]) }
            }
        }
    }

    /// Predicted classes: arg-max, or the number of cumulative bins above one half.
    public func predictions(_ logits: Tensor) -> [Int] {
        switch self {
        case .ce:
            let n = logits.shape[0], m = logits.count / max(1, n), p = logits.pointer
            return (0 ..< n).map { i in (0 ..< m).max { p[i * m + $0] < p[i * m + $1] }! }
        case .ordinal: return OrdinalLoss.cumulativePrediction(logits: logits)
        }
    }
}

/// How a training mini-batch is shown: at a lower resolution (curriculum), with which augmentation.
public struct TrainingView: Sendable, Equatable {
    /// Side on the 224 scale (nil = full resolution): patches are resampled to round(P side / 224).
    public var side: Int?
    public var lowPass: LowPassMethod
    public var augmentation: AugmentationSettings
}

/// Where a process's images sit in the whole mini-batch (data-parallel training; one process: offset 0, all of it).
struct BatchShare: Sendable, Equatable {
    /// Position of the share's first image in the mini-batch.
    var offset: Int
    /// Patches of the largest grid in the whole mini-batch (PatchGD's inner iterations are counted from it).
    var largestCells: Int

    /// The whole mini-batch in one process.
    static func whole(_ images: [TrainingImage]) -> BatchShare {
        BatchShare(offset: 0, largestCells: images.map(\.grid.cells.count).max() ?? 0)
    }
}

/// A training method the trainer drives: PatchGD over patch grids, or GD on whole downscaled images.
protocol TrainingMethod: AnyObject {
    /// Models with their checkpoint prefixes and optimizers (one per model; nil when built to predict only).
    var parts: [(prefix: String, model: Model, optimizer: Optimizer?)] { get }
    /// Called before every optimizer step (schedule, clipping).
    var beforeStep: (() -> Void)? { get set }
    /// One training step on `images`, this process's share of mini-batch `batch` (its first image at `share.offset` of
    /// the whole mini-batch); returns the share's mean loss and the logits of its last forward pass. An empty share
    /// still takes the step's optimizer steps (`beforeStep` sums gradients across processes).
    func train(_ images: [TrainingImage], labels: [Int], epoch: Int, batch: Int, view: TrainingView, share: BatchShare) throws -> (loss: Float, logits: Tensor)
    /// Logits in evaluation mode (no augmentation, running BatchNorm statistics).
    func logits(_ images: [TrainingImage]) throws -> Tensor
    /// Replaces BatchNorm's running statistics by their average over forward passes of `batches` (no augmentation,
    /// no gradients, no dropout): the statistics of the current weights, not a lagging average of earlier ones.
    func recalibrate(_ batches: [[TrainingImage]]) throws
    /// Patches (PatchGD) or images (GD) read per training mini-batch, for progress.
    func workUnits(_ images: [TrainingImage]) -> Int
    /// From now on, record unreadable patches in `log` and read them as background instead of failing.
    func recordBadPatches(in log: BadPatchLog)
    /// The stain normalisation patches are read with (nil: none), for its counts.
    var stain: StainNormalizer? { get }
}

/// PatchGD: patches streamed lazily from the slides through a `PatchReader`.
final class PatchGDMethod: TrainingMethod {
    let core: PatchGD
    let reader: PatchReader
    let seed: UInt64
    let loss: (Tensor, [Int]) -> LossResult

    init(core: PatchGD, reader: PatchReader, seed: UInt64, loss: @escaping (Tensor, [Int]) -> LossResult) {
        self.core = core
        self.reader = reader
        self.seed = seed
        self.loss = loss
    }

    var parts: [(prefix: String, model: Model, optimizer: Optimizer?)] {
        [("backbone.", core.backbone, core.backboneOptimizer), ("head.", core.head, core.headOptimizer)]
    }

    var beforeStep: (() -> Void)? {
        get { core.beforeStep }
        set { core.beforeStep = newValue }
    }

    /// The patch provider for a batch: augmentation per (epoch, slide, cell), so a patch looks the same in the fill pass
    /// and when recomputed with gradients within one step.
    func provider(_ images: [TrainingImage], epoch: Int?, view: TrainingView? = nil) -> (PatchProvider, PatchPrefetcher) {
        let reader = self.reader, seed = self.seed
        let settings = view?.augmentation ?? .none
        let provide: PatchProvider = { b, cells in
            let image = images[b]
            let augmentations = epoch.flatMap { e in
                settings.isNone ? nil : cells.map { settings.draw(seed: SplitMix64(seed: seed).derived(UInt64(e), UInt64(bitPattern: image.slideID), UInt64($0)).state) }
            }
            let patches = try reader.read(image.locations(of: cells), augmentations: augmentations)
            guard let view, let side = view.side else { return patches }
            return LowResolution.apply(patches, side: Curriculum.side(reader.patchSize, resolution: side), method: view.lowPass)
        }
        let prefetch: PatchPrefetcher = { b, cells in reader.prefetch(images[b].locations(of: cells)) }
        return (provide, prefetch)
    }

    func train(_ images: [TrainingImage], labels: [Int], epoch: Int, batch: Int, view: TrainingView, share: BatchShare) throws -> (loss: Float, logits: Tensor) {
        let (provide, prefetch) = provider(images, epoch: epoch)
        var rng = SplitMix64(seed: seed).derived(1, UInt64(epoch), UInt64(batch))
        // Each image's patch order from its place in the whole mini-batch: the same whatever the number of processes.
        let orderSeeds = images.indices.map { SplitMix64(seed: seed).derived(3, UInt64(epoch), UInt64(batch), UInt64(share.offset + $0)).state }
        let result = try core.trainStep(images.map(\.grid), labels: labels, patches: provide, prefetch: prefetch, rng: &rng, loss: loss,
                                        orderSeeds: orderSeeds, largestCells: share.largestCells)
        return (result.loss, result.logits)
    }

    func logits(_ images: [TrainingImage]) throws -> Tensor {
        let (provide, prefetch) = provider(images, epoch: nil)
        return head(try core.fill(images.map(\.grid), patches: provide, prefetch: prefetch))
    }

    private func head(_ z: Tensor) -> Tensor { core.head.forward(z, Context(training: false, recordForBackward: false, precision: core.precision)) }

    /// The backbone first, on every patch of the batches (each fill chunk one BatchNorm batch), then the head on the
    /// Z those patches make with the backbone's new statistics.
    func recalibrate(_ batches: [[TrainingImage]]) throws {
        let ctx = Context(training: false, recordForBackward: false, precision: core.precision)
        ctx.recalibrateBatchNorm = true
        try core.backbone.store.recalibratingBatchNorm {
            for images in batches where !images.isEmpty {
                let (provide, _) = provider(images, epoch: nil)
                for chunk in PatchGD.chunks(images.map(\.grid), size: core.fillChunk) {
                    _ = core.backbone.forward(try PatchGD.gather(chunk, provide), ctx)
                }
            }
        }
        try core.head.store.recalibratingBatchNorm {
            for images in batches where !images.isEmpty {
                let (provide, prefetch) = provider(images, epoch: nil)
                _ = core.head.forward(try core.fill(images.map(\.grid), patches: provide, prefetch: prefetch), ctx)
            }
        }
    }

    /// One image's logits and, for the class `target` picks from them, each present cell's gradient x input score
    /// (in `image.grid.cells` order), plus the occlusion drops of the same cells when `occlusion` is set.
    func explain(_ image: TrainingImage, target: (Tensor) -> Int, occlusion: Bool) throws -> (logits: Tensor, scores: [Float], occlusion: [Float]?) {
        let (provide, prefetch) = provider([image], epoch: nil)
        let z = try core.fill([image.grid], patches: provide, prefetch: prefetch)
        // One head pass gives the logits, the predicted class and (its backward) the scores.
        let (logits, targets, scores) = core.attribution(z) { [target($0)] }
        let perCell = image.grid.cells.map { scores.pointer[$0] }
        return (logits, perCell, occlusion ? core.occlusion(z, image: 0, cells: image.grid.cells, target: targets[0]) : nil)
    }

    func recordBadPatches(in log: BadPatchLog) { reader.badPatches = log }

    var stain: StainNormalizer? { reader.stain }

    func workUnits(_ images: [TrainingImage]) -> Int {
        // The fill pass reads every patch; the inner iterations recompute each once more per sweep.
        images.reduce(0) { $0 + $1.grid.cells.count } * 2
    }
}

/// The GD baseline: the backbone trained end to end on each whole image downscaled to `imageSize` (letter-boxed in white).
final class GDMethod: TrainingMethod {
    let model: Model
    let optimizer: Optimizer?
    let images: WholeImageReader
    let seed: UInt64
    let loss: (Tensor, [Int]) -> LossResult
    var beforeStep: (() -> Void)?
    var batchNorm: BatchNormMode
    /// The matrix products' precision (resolved: bf16 only where the CPU has it).
    var precision: Precision = .fp32

    init(model: Model, optimizer: Optimizer?, images: WholeImageReader, seed: UInt64, batchNorm: BatchNormMode = .train,
         loss: @escaping (Tensor, [Int]) -> LossResult) {
        self.batchNorm = batchNorm
        self.model = model
        self.optimizer = optimizer
        self.images = images
        self.seed = seed
        self.loss = loss
    }

    var parts: [(prefix: String, model: Model, optimizer: Optimizer?)] { [("backbone.", model, optimizer)] }

    func train(_ batch: [TrainingImage], labels: [Int], epoch: Int, batch index: Int, view: TrainingView, share: BatchShare) throws -> (loss: Float, logits: Tensor) {
        guard let optimizer else { preconditionFailure("GDMethod.train on a method built without an optimizer (prediction only)") }
        if batch.isEmpty {
            model.store.zeroGradients()
            beforeStep?()
            optimizer.step()
            return (0, Tensor(shape: [0, model.outputs]))
        }
        let augmentation = view.augmentation
        let augmentations = augmentation.isNone ? nil : batch.map {
            augmentation.draw(seed: SplitMix64(seed: seed).derived(UInt64(epoch), UInt64(bitPattern: $0.slideID)).state)
        }
        var x = try images.read(batch.map(\.path), augmentations: augmentations)
        if let side = view.side {
            x = LowResolution.apply(x, side: Curriculum.side(images.size, resolution: side), method: view.lowPass)
        }
        let rng = SplitMix64(seed: seed).derived(1, UInt64(epoch), UInt64(index))
        let ctx = Context(training: true, recordForBackward: true, seed: rng.state, precision: precision)
        ctx.frozenBatchNorm = batchNorm == .frozen
        model.store.zeroGradients()
        let logits = model.forward(x, ctx)
        let result = loss(logits, labels)
        model.backward(result.gradient, ctx)
        beforeStep?()
        optimizer.step()
        return (result.loss, logits)
    }

    func logits(_ batch: [TrainingImage]) throws -> Tensor {
        model.forward(try images.read(batch.map(\.path), augmentations: nil), Context(training: false, recordForBackward: false, precision: precision))
    }

    func recalibrate(_ batches: [[TrainingImage]]) throws {
        let ctx = Context(training: false, recordForBackward: false, precision: precision)
        ctx.recalibrateBatchNorm = true
        try model.store.recalibratingBatchNorm {
            for batch in batches where !batch.isEmpty { _ = model.forward(try images.read(batch.map(\.path), augmentations: nil), ctx) }
        }
    }

    func workUnits(_ images: [TrainingImage]) -> Int { images.count }

    /// GD reads whole images from a coarse pyramid level, not patches: a read that fails there fails the run.
    func recordBadPatches(in log: BadPatchLog) {}

    var stain: StainNormalizer? { images.stain }
}

/// Reads whole slides downscaled to fit `size` x `size` from the best pyramid level (never level 0 of a large slide),
/// letter-boxed in white, normalised; keeps up to `capacity` decoded images.
final class WholeImageReader: @unchecked Sendable {
    let size: Int
    let normalization: Normalization
    let capacity: Int
    private let lock = NSLock()
    private var cache: [String: [UInt8]] = [:]
    private var order: [String] = []
    /// Stain normalisation of each downscaled image before it is letter-boxed and cached (nil: none).
    let stain: StainNormalizer?

    init(size: Int, normalization: Normalization, capacity: Int, stain: StainNormalizer? = nil) {
        self.size = size
        self.normalization = normalization
        self.capacity = capacity
        self.stain = stain
    }

    func read(_ paths: [String], augmentations: [PatchAugmentation]?) throws -> Tensor {
        try normalization.tensor(count: paths.count, side: size, augmentations: augmentations) { try self.rgb(paths[$0]) }
    }

    func rgb(_ path: String) throws -> [UInt8] {
        if let hit = lock.withLock({ cache[path] }) { return hit }
        var thumb = try Slide(path: path).thumbnail(maxSize: size)
        stain?.apply(&thumb.pixels)
        var square = [UInt8](repeating: 255, count: 3 * size * size)
        let x0 = (size - thumb.width) / 2, y0 = (size - thumb.height) / 2
        for y in 0 ..< thumb.height {
            let d = 3 * ((y0 + y) * size + x0), s = 3 * y * thumb.width
            square.replaceSubrange(d ..< d + 3 * thumb.width, with: thumb.pixels[s ..< s + 3 * thumb.width])
        }
        lock.withLock {
            if cache[path] == nil, capacity > 0 {
                if cache.count >= capacity { cache[order.removeFirst()] = nil }
                cache[path] = square
                order.append(path)
            }
        }
        return square
    }
}
