/// Batch normalisation over N, H, W per channel, with PyTorch's semantics.
///
/// Training: normalise with the batch mean and biased variance; update running_mean and running_var
/// (the unbiased variance) with momentum 0.1; count num_batches_tracked. Evaluation: use the running statistics.
public final class BatchNorm2d: Layer {
    /// An activation applied in the same pass (ResNet's BatchNorm then ReLU, MobileNet's BatchNorm then ReLU6).
    public enum Activation: Sendable { case none, relu, relu6 }

    public let channels: Int
    public let activation: Activation
    public let eps: Float
    public let momentum: Float
    unowned let store: ParameterStore
    let weight: Int, bias: Int, runningMean: Int, runningVar: Int, batches: Int
    /// The input and the statistics it was normalised with, for backward, which recomputes xhat = (x - mean) * istd
    /// from them (the same expression, so the same floats) instead of forward writing xhat out: one pass less.
    private var input: Tensor?
    private var means: [Float] = []
    private var invStd: [Float] = []
    private var trainingForward = true

    public init(_ store: ParameterStore, _ name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1,
                activation: Activation = .none) {
        self.store = store
        self.channels = channels
        self.activation = activation
        self.eps = eps
        self.momentum = momentum
        weight = store.declare("\(name).weight", shape: [channels], initializer: .ones)
        bias = store.declare("\(name).bias", shape: [channels], initializer: .zeros)
        runningMean = store.declare("\(name).running_mean", shape: [channels], kind: .buffer, initializer: .zeros)
        runningVar = store.declare("\(name).running_var", shape: [channels], kind: .buffer, initializer: .ones)
        batches = store.declare("\(name).num_batches_tracked", shape: [], kind: .counter)
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let (n, c, h, w) = x.nchw
        precondition(c == channels, "BatchNorm2d expects \(channels) channels, got \(c)")
        let p = h * w, m = n * p
        let y = Tensor(uninitialized: x.shape)
        var inv = [Float](repeating: 0, count: c), means = [Float](repeating: 0, count: c)
        let px = x.pointer, py = y.pointer
        let gamma = store.value(weight), beta = store.value(bias), rm = store.buffer(runningMean), rv = store.buffer(runningVar)
        let updateRunning = (ctx.training && !ctx.frozenBatchNorm) || ctx.recalibrateBatchNorm
        let training = updateRunning || ctx.batchStatistics, eps = eps
        let momentum = ctx.recalibrateBatchNorm ? 1 / Float(store.counters[batches] + 1) : momentum
        let (lo, hi): (Float, Float) = activation == .none ? (-.infinity, .infinity) : (0, activation == .relu6 ? 6 : .infinity)
        inv.withUnsafeMutableBufferPointer { inv in means.withUnsafeMutableBufferPointer { means in
            Parallel.forRange(c, grain: 1) { r in
                for ch in r {
                    var mean: Float, variance: Float
                    if training {
                        var s: Double = 0, sq: Double = 0
                        for b in 0 ..< n {
                            let (s1, s2) = BatchNormKernels.moments(px + (b * c + ch) * p, p)
                            s += Double(s1); sq += Double(s2)
                        }
                        let mu = s / Double(m)
                        let v = max(0, sq / Double(m) - mu * mu)
                        mean = Float(mu)
                        variance = Float(v)
                        if updateRunning {
                            rm[ch] = (1 - momentum) * rm[ch] + momentum * mean
                            rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(m > 1 ? v * Double(m) / Double(m - 1) : v)
                        }
                    } else {
                        mean = rm[ch]
                        variance = rv[ch]
                    }
                    let istd = 1 / (variance + eps).squareRoot()
                    inv[ch] = istd
                    means[ch] = mean
                    let g = gamma[ch], bb = beta[ch]
                    for b in 0 ..< n {
                        let off = (b * c + ch) * p
                        BatchNormKernels.normalize(px + off, py + off, p, mean: mean, istd: istd, gamma: g, beta: bb, lo: lo, hi: hi)
                    }
                }
            }
        } }
        if updateRunning { store.counters[batches] += 1 }
        invStd = inv
        self.means = means
        input = ctx.recordForBackward ? x : nil
        trainingForward = training
        return y
    }

    /// In inference with running statistics, this layer is a per-channel affine map and a clamp, which the layer before
    /// it can apply to its output while that output is still in cache (`Conv2d.forward(_:_:then:)`, `Sequential`).
    /// nil where this forward would use or update batch statistics, or record for backward.
    public func inferenceEpilogue(_ ctx: Context) -> Epilogue? {
        let updateRunning = (ctx.training && !ctx.frozenBatchNorm) || ctx.recalibrateBatchNorm
        guard !updateRunning, !ctx.batchStatistics, !ctx.recordForBackward else { return nil }
        let rm = store.buffer(runningMean), rv = store.buffer(runningVar), gamma = store.value(weight), beta = store.value(bias)
        let (lo, hi): (Float, Float) = activation == .none ? (-.infinity, .infinity) : (0, activation == .relu6 ? 6 : .infinity)
        return Epilogue(mean: (0 ..< channels).map { rm[$0] }, istd: (0 ..< channels).map { 1 / (rv[$0] + eps).squareRoot() },
                        gamma: (0 ..< channels).map { gamma[$0] }, beta: (0 ..< channels).map { beta[$0] }, lo: lo, hi: hi)
    }

    /// BatchNorm in inference and its activation, per channel: y = clamp((x - mean) * istd * gamma + beta, lo, hi),
    /// the same expression as `forward`, so applying it gives the same floats bit for bit.
    public struct Epilogue: Sendable {
        let mean: [Float], istd: [Float], gamma: [Float], beta: [Float], lo: Float, hi: Float

        /// Applies channel `channel`'s map to `count` floats at `y`, in place.
        @inline(__always)
        func apply(_ y: UnsafeMutablePointer<Float>, count: Int, channel: Int) {
            BatchNormKernels.normalize(y, y, count, mean: mean[channel], istd: istd[channel], gamma: gamma[channel],
                                       beta: beta[channel], lo: lo, hi: hi)
        }

        /// Applies it to all of y (n, c, h, w), one plane per channel, in place.
        func apply(_ y: Tensor) {
            let (n, c, h, w) = y.nchw
            let p = h * w, py = y.pointer
            Parallel.forRange(n * c, grain: max(1, (1 << 14) / max(1, p))) { r in
                for i in r { apply(py + i * p, count: p, channel: i % c) }
            }
        }
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm2d.backward without a recorded forward") }
        let (n, c, h, w) = dy.nchw
        let p = h * w, m = Float(n * p)
        let dx = Tensor(uninitialized: dy.shape)
        let pdy = dy.pointer, pdx = dx.pointer, px = x.pointer
        let gamma = store.value(weight), beta = store.value(bias), dgamma = store.gradient(weight), dbeta = store.gradient(bias)
        let training = trainingForward
        let (lo, hi): (Float, Float) = activation == .none ? (-.infinity, .infinity) : (0, activation == .relu6 ? 6 : .infinity)
        invStd.withUnsafeBufferPointer { inv in means.withUnsafeBufferPointer { means in
            Parallel.forRange(c, grain: 1) { r in
                for ch in r {
                    let g = gamma[ch], bb = beta[ch], mean = means[ch], istd = inv[ch]
                    var sdy: Float = 0, sdyx: Float = 0
                    for b in 0 ..< n {
                        let (s1, s2) = BatchNormKernels.gatedSums(pdy + (b * c + ch) * p, px + (b * c + ch) * p, p, mean: mean, istd: istd,
                                                                  gamma: g, beta: bb, lo: lo, hi: hi)
                        sdy += s1; sdyx += s2
                    }
                    dgamma[ch] += sdyx
                    dbeta[ch] += sdy
                    // dx = gamma * istd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat)); in evaluation, gamma * istd * dy.
                    let k = g * inv[ch], meanDy = training ? sdy / m : 0, meanDyx = training ? sdyx / m : 0
                    for b in 0 ..< n {
                        let off = (b * c + ch) * p
                        BatchNormKernels.inputGradient(pdy + off, px + off, pdx + off, p, mean: mean, istd: istd, k: k, meanDy: meanDy,
                                                       meanDyx: meanDyx, gamma: g, beta: bb, lo: lo, hi: hi)
                    }
                }
            }
        } }
        input = nil
        return dx
    }
}
