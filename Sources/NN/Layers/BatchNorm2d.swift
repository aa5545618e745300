/// Batch normalisation over N, H, W per channel, with PyTorch's semantics.
///
/// Training: normalise with the batch mean and biased variance; update running_mean and running_var
/// (the unbiased variance) with momentum 0.1; count num_batches_tracked. Evaluation: use the running statistics.
public final class BatchNorm2d: Layer {
    public let channels: Int
    public let eps: Float
    public let momentum: Float
    unowned let store: ParameterStore
    let weight: Int, bias: Int, runningMean: Int, runningVar: Int, batches: Int
    private var normalized: Tensor?
    private var invStd: [Float] = []
    private var trainingForward = true

    public init(_ store: ParameterStore, _ name: String, channels: Int, eps: Float = 1e-5, momentum: Float = 0.1) {
        self.store = store
        self.channels = channels
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
        let xhat = ctx.recordForBackward ? Tensor(uninitialized: x.shape) : nil
        var inv = [Float](repeating: 0, count: c)
        let px = x.pointer, py = y.pointer, pxh = xhat?.pointer
        let gamma = store.value(weight), beta = store.value(bias), rm = store.buffer(runningMean), rv = store.buffer(runningVar)
        let training = ctx.training, eps = eps, momentum = momentum
        inv.withUnsafeMutableBufferPointer { inv in
            Parallel.forRange(c, grain: 1) { r in
                for ch in r {
                    var mean: Float, variance: Float
                    if training {
                        var s: Double = 0, sq: Double = 0
                        for b in 0 ..< n {
                            let base = px + (b * c + ch) * p
                            var s1: Float = 0, s2: Float = 0
                            for i in 0 ..< p { s1 += base[i]; s2 += base[i] * base[i] }
                            s += Double(s1); sq += Double(s2)
                        }
                        let mu = s / Double(m)
                        let v = max(0, sq / Double(m) - mu * mu)
                        mean = Float(mu)
                        variance = Float(v)
                        rm[ch] = (1 - momentum) * rm[ch] + momentum * mean
                        rv[ch] = (1 - momentum) * rv[ch] + momentum * Float(m > 1 ? v * Double(m) / Double(m - 1) : v)
                    } else {
                        mean = rm[ch]
                        variance = rv[ch]
                    }
                    let istd = 1 / (variance + eps).squareRoot()
                    inv[ch] = istd
                    let g = gamma[ch], bb = beta[ch]
                    for b in 0 ..< n {
                        let off = (b * c + ch) * p
                        if let pxh {
                            for i in 0 ..< p { let v = (px[off + i] - mean) * istd; pxh[off + i] = v; py[off + i] = v * g + bb }
                        } else {
                            for i in 0 ..< p { py[off + i] = (px[off + i] - mean) * istd * g + bb }
                        }
                    }
                }
            }
        }
        if training { store.counters[batches] += 1 }
        invStd = inv
        normalized = xhat
        trainingForward = training
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let xhat = normalized else { preconditionFailure("BatchNorm2d.backward without a recorded forward") }
        let (n, c, h, w) = dy.nchw
        let p = h * w, m = Float(n * p)
        let dx = Tensor(uninitialized: dy.shape)
        let pdy = dy.pointer, pdx = dx.pointer, pxh = xhat.pointer
        let gamma = store.value(weight), dgamma = store.gradient(weight), dbeta = store.gradient(bias)
        let training = trainingForward
        invStd.withUnsafeBufferPointer { inv in
            Parallel.forRange(c, grain: 1) { r in
                for ch in r {
                    var sdy: Float = 0, sdyx: Float = 0
                    for b in 0 ..< n {
                        let off = (b * c + ch) * p
                        for i in 0 ..< p { sdy += pdy[off + i]; sdyx += pdy[off + i] * pxh[off + i] }
                    }
                    dgamma[ch] += sdyx
                    dbeta[ch] += sdy
                    let k = gamma[ch] * inv[ch]
                    for b in 0 ..< n {
                        let off = (b * c + ch) * p
                        if training {
                            // dx = gamma * istd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
                            for i in 0 ..< p { pdx[off + i] = k * (pdy[off + i] - sdy / m - pxh[off + i] * sdyx / m) }
                        } else {
                            for i in 0 ..< p { pdx[off + i] = k * pdy[off + i] }
                        }
                    }
                }
            }
        }
        normalized = nil
        return dx
    }
}
