import Foundation

import Seeded

/// What a forward pass needs besides its input: mode, randomness, and whether to keep what backward needs.
public final class Context: @unchecked Sendable {
    /// Training mode: BatchNorm uses batch statistics and updates running ones; dropout drops.
    public var training: Bool
    /// Keep activations for a backward pass (off for inference and PatchGD's no-gradient fill pass).
    public var recordForBackward: Bool
    /// Outside training: BatchNorm normalises with the batch's statistics anyway (without updating the running ones).
    public var batchStatistics = false
    /// In training: BatchNorm normalises with its running statistics and leaves them as they are (dropout still drops).
    public var frozenBatchNorm = false
    /// Recalibration: BatchNorm normalises with the batch's statistics and folds them into the running ones as a
    /// cumulative average over the batches since its counter was zeroed (PyTorch's momentum=None), without dropout.
    public var recalibrateBatchNorm = false
    /// Random stream for dropout and augmentation.
    public var rng: SplitMix64
    /// The matrix products' precision (convolutions and linear layers; see `Precision`). Everything else, and every
    /// tensor between layers, stays float32.
    public var precision: Precision

    public init(training: Bool, recordForBackward: Bool? = nil, seed: UInt64 = 0, precision: Precision = .fp32) {
        self.training = training
        self.precision = precision
        self.recordForBackward = recordForBackward ?? training
        rng = SplitMix64(seed: seed)
    }
}

/// A differentiable operation: `forward` computes outputs (caching what backward needs when the context records),
/// `backward` takes the gradient of the output, accumulates parameter gradients, and returns the input's gradient.
public protocol Layer: AnyObject {
    func forward(_ x: Tensor, _ ctx: Context) -> Tensor
    func backward(_ dy: Tensor, _ ctx: Context) -> Tensor
}

/// Layers applied one after another.
///
/// In inference with running statistics, a BatchNorm2d right after a Conv2d is applied by the convolution to its output
/// while it is still in cache (`BatchNorm2d.inferenceEpilogue`): the same floats, one memory pass and one tensor fewer.
public final class Sequential: Layer {
    public var layers: [Layer]

    /// Whether inference fuses BatchNorm into the convolution before it (default on; the environment variable
    /// `GIGAPATCH_FUSE_BATCHNORM=0` turns it off everywhere, to compare).
    public static let fusesBatchNorm = ProcessInfo.processInfo.environment["GIGAPATCH_FUSE_BATCHNORM"] != "0"

    public init(_ layers: [Layer]) { self.layers = layers }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        var y = x, i = 0
        while i < layers.count {
            if Sequential.fusesBatchNorm, i + 1 < layers.count, let conv = layers[i] as? Conv2d, let norm = layers[i + 1] as? BatchNorm2d,
               let epilogue = norm.inferenceEpilogue(ctx) {
                y = conv.forward(y, ctx, then: epilogue)
                i += 2
            } else {
                y = layers[i].forward(y, ctx)
                i += 1
            }
        }
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        layers.reversed().reduce(dy) { $1.backward($0, ctx) }
    }
}

/// (N, C, H, W) to (N, C*H*W): a view, no copy.
public final class Flatten: Layer {
    private var inputShape: [Int] = []
    public init() {}

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        inputShape = x.shape
        return x.reshaped([x.shape[0], x.count / x.shape[0]])
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor { dy.reshaped(inputShape) }
}

/// Elementwise helpers shared by layers.
public enum Elementwise {
    /// out = a + b (same shapes).
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        let out = Tensor(uninitialized: a.shape)
        let (pa, pb, po) = (a.pointer, b.pointer, out.pointer)
        Parallel.forRange(a.count, grain: 1 << 15) { r in SIMDLoop.zip(pa, pb, po, r) { $0 + $1 } }
        return out
    }

    /// a += b (same shapes), in place.
    public static func accumulate(_ a: Tensor, _ b: Tensor) {
        precondition(a.shape == b.shape)
        let (pa, pb) = (a.pointer, b.pointer)
        Parallel.forRange(a.count, grain: 1 << 15) { r in SIMDLoop.zip(pa, pb, pa, r) { $0 + $1 } }
    }
}
