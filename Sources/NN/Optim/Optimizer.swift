import Foundation

/// A set of parameters (ranges of the store's contiguous block) with its own learning rate and weight decay.
public struct ParameterGroup: Sendable, Equatable {
    public var name: String
    public var ranges: [Range<Int>]
    public var learningRate: Float
    public var weightDecay: Float

    public init(name: String, ranges: [Range<Int>], learningRate: Float, weightDecay: Float = 0) {
        self.name = name
        self.ranges = ranges
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }
}

/// The update rule, with PyTorch's formulas (torch.optim.SGD, Adam, AdamW).
public enum OptimizerKind: Sendable, Equatable {
    case sgd(momentum: Float = 0, nesterov: Bool = false, dampening: Float = 0)
    case adam(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8)
    case adamW(beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8)

    public var name: String {
        switch self {
        case .sgd: return "sgd"
        case .adam: return "adam"
        case .adamW: return "adamw"
        }
    }
}

/// Updates a store's parameters from its gradients; its state (moments, step count) is one contiguous buffer each.
public final class Optimizer {
    public let kind: OptimizerKind
    public var groups: [ParameterGroup]
    unowned let store: ParameterStore
    /// First moments (Adam) or momentum buffers (SGD), and second moments (Adam), over the whole parameter block.
    public let moment1: UnsafeMutableBufferPointer<Float>
    public let moment2: UnsafeMutableBufferPointer<Float>
    /// Steps taken (Adam's bias correction; SGD's first-step momentum initialisation).
    public var stepCount = 0

    public init(_ kind: OptimizerKind, store: ParameterStore, groups: [ParameterGroup]) {
        self.kind = kind
        self.store = store
        self.groups = groups
        moment1 = .allocate(capacity: max(1, store.parameterCount))
        moment2 = .allocate(capacity: max(1, store.parameterCount))
        moment1.initialize(repeating: 0)
        moment2.initialize(repeating: 0)
    }

    /// One group over every parameter.
    public convenience init(_ kind: OptimizerKind, store: ParameterStore, learningRate: Float, weightDecay: Float = 0) {
        self.init(kind, store: store, groups: [ParameterGroup(name: "all", ranges: [0 ..< store.parameterCount],
                                                               learningRate: learningRate, weightDecay: weightDecay)])
    }

    deinit {
        moment1.deallocate()
        moment2.deallocate()
    }

    /// Applies one update with each group's learning rate times `scale` (the schedule's factor).
    public func step(scale: Float = 1) {
        stepCount += 1
        let t = Float(stepCount)
        let p = store.values.baseAddress!, g = store.gradients.baseAddress!, m = moment1.baseAddress!, v = moment2.baseAddress!
        let first = stepCount == 1
        for group in groups {
            let lr = group.learningRate * scale, wd = group.weightDecay
            for range in group.ranges {
                switch kind {
                case .sgd(let momentum, let nesterov, let dampening):
                    Parallel.forRange(range.count, grain: 1 << 14) { r in
                        for j in r {
                            let i = range.lowerBound + j
                            var d = g[i] + wd * p[i]
                            if momentum != 0 {
                                m[i] = first ? d : momentum * m[i] + (1 - dampening) * d
                                d = nesterov ? d + momentum * m[i] : m[i]
                            }
                            p[i] -= lr * d
                        }
                    }
                case .adam(let b1, let b2, let eps), .adamW(let b1, let b2, let eps):
                    // Decoupled (AdamW): p *= 1 - lr*wd; coupled (Adam): g += wd*p. Then the bias-corrected Adam step.
                    let decay: Float = kind.name == "adamw" ? 1 - lr * wd : 1, l2: Float = kind.name == "adamw" ? 0 : wd
                    let bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t)
                    let stepSize = lr / bc1, bc2Root = bc2.squareRoot()
                    Parallel.forRange(range.count, grain: 1 << 14) { r in
                        AdamKernel.update(p + range.lowerBound, g + range.lowerBound, m + range.lowerBound, v + range.lowerBound, r,
                                          decay: decay, l2: l2, b1: b1, b2: b2, stepSize: stepSize, bc2Root: bc2Root, eps: eps)
                    }
                }
            }
        }
    }
}

/// Adam's elementwise update in 8-wide SIMD (memory-bound: four arrays read, three written).
enum AdamKernel {
    typealias V = SIMDLoop.Vector

    @inline(__always)
    static func update(_ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ m: UnsafeMutablePointer<Float>,
                       _ v: UnsafeMutablePointer<Float>, _ range: Range<Int>, decay: Float, l2: Float, b1: Float, b2: Float,
                       stepSize: Float, bc2Root: Float, eps: Float) {
        @inline(__always) func load(_ q: UnsafeMutablePointer<Float>, _ i: Int) -> V { SIMDLoop.load(q + i) }
        @inline(__always) func store(_ x: V, _ q: UnsafeMutablePointer<Float>, _ i: Int) { SIMDLoop.store(x, q + i) }
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let pv = load(p, i) * decay
            let grad = load(g, i) + l2 * pv
            let mv = b1 * load(m, i) + (1 - b1) * grad
            let vv = b2 * load(v, i) + (1 - b2) * grad * grad
            store(mv, m, i)
            store(vv, v, i)
            store(pv - stepSize * mv / (vv.squareRoot() / bc2Root + eps), p, i)
            i += 8
        }
        while i < range.upperBound {
            let pv = p[i] * decay, grad = g[i] + l2 * pv
            m[i] = b1 * m[i] + (1 - b1) * grad
            v[i] = b2 * v[i] + (1 - b2) * grad * grad
            p[i] = pv - stepSize * m[i] / (v[i].squareRoot() / bc2Root + eps)
            i += 1
        }
    }
}

/// Learning-rate factor as a function of the step (multiplies each group's learning rate).
public enum Schedule: Sendable, Equatable {
    case constant
    /// Linear warm-up from 1/warmup to 1 over `warmup` steps, then linear decay to 0 at `total`.
    case warmupLinear(warmup: Int, total: Int)
    /// Linear warm-up, then half a cosine from 1 to `floor` at `total`.
    case cosine(warmup: Int, total: Int, floor: Float = 0)
    /// Multiply by `gamma` every `every` steps.
    case step(every: Int, gamma: Float)

    /// The factor for 0-based step `s`.
    public func factor(_ s: Int) -> Float {
        switch self {
        case .constant: return 1
        case .warmupLinear(let w, let total):
            if s < w { return Float(s + 1) / Float(w) }
            return max(0, Float(total - s) / Float(max(1, total - w)))
        case .cosine(let w, let total, let floor):
            if s < w { return Float(s + 1) / Float(w) }
            let progress = min(1, Float(s - w) / Float(max(1, total - w)))
            return floor + (1 - floor) * 0.5 * (1 + cos(.pi * progress))
        case .step(let every, let gamma):
            return pow(gamma, Float(s / max(1, every)))
        }
    }
}

extension ParameterStore {
    /// L2 norm of all gradients together.
    public func gradientNorm() -> Float {
        let g = gradients.baseAddress!
        var total: Double = 0
        var i = 0
        // Blocks of 8 float accumulators (SIMD-friendly), summed in double across blocks.
        while i + 8 <= parameterCount {
            var acc = SIMD8<Float>()
            let end = min(parameterCount - (parameterCount - i) % 8, i + 4096)
            while i < end {
                let v = SIMD8<Float>(UnsafeBufferPointer(start: g + i, count: 8))
                acc += v * v
                i += 8
            }
            total += Double(acc.sum())
        }
        while i < parameterCount { total += Double(g[i] * g[i]); i += 1 }
        return Float(total.squareRoot())
    }

    /// Whether every parameter is a finite number (a diverged step leaves infinities or NaNs behind).
    public func valuesAreFinite() -> Bool {
        let v = values.baseAddress!
        var i = 0
        var acc = SIMD8<Float>()
        while i + 8 <= parameterCount {
            acc += SIMD8<Float>(UnsafeBufferPointer(start: v + i, count: 8)) * 0   // 0 * inf and 0 * nan are nan
            i += 8
        }
        while i < parameterCount { acc[0] += v[i] * 0; i += 1 }
        return acc.sum() == 0
    }

    /// Scales gradients so their total L2 norm is at most `maxNorm`; returns the norm before clipping.
    @discardableResult
    public func clipGradients(maxNorm: Float) -> Float {
        let norm = gradientNorm()
        if norm > maxNorm { scaleGradients(maxNorm / (norm + 1e-6)) }
        return norm
    }

    /// Multiplies every gradient by `factor` (e.g. 1/accumulation steps).
    public func scaleGradients(_ factor: Float) {
        let g = gradients.baseAddress!
        Parallel.forRange(parameterCount, grain: 1 << 15) { r in for i in r { g[i] *= factor } }
    }
}
