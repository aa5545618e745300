/// ReLU, or ReLU6 when `cap` is 6: y = min(max(x, 0), cap).
public final class ReLU: Layer {
    public let cap: Float
    private var output: Tensor?

    public init(cap: Float = .infinity) { self.cap = cap }

    /// ReLU6 (MobileNetV2).
    public static func six() -> ReLU { ReLU(cap: 6) }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let y = Tensor(uninitialized: x.shape)
        let (px, py, cap) = (x.pointer, y.pointer, cap)
        Parallel.forRange(x.count, grain: 1 << 15) { r in
            SIMDLoop.map(px, py, r) { v in SIMDLoop.clamp(v, .zero, SIMDLoop.Vector(repeating: cap)) }
        }
        output = ctx.recordForBackward ? y : nil
        return y
    }

    /// dx = dy where 0 < y < cap (PyTorch's convention: no gradient at the kinks).
    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let y = output else { preconditionFailure("ReLU.backward without a recorded forward") }
        let dx = Tensor(uninitialized: dy.shape)
        let (py, pdy, pdx, cap) = (y.pointer, dy.pointer, dx.pointer, cap)
        Parallel.forRange(dy.count, grain: 1 << 15) { r in
            SIMDLoop.zip(py, pdy, pdx, r) { y, d in
                let open = (y .> 0) .& (y .< SIMD8(repeating: cap))
                return SIMD8<Float>.zero.replacing(with: d, where: open)
            }
        }
        output = nil
        return dx
    }
}

/// Dropout (elements) or Dropout2d (whole channels of an NCHW tensor), active in training only.
public final class Dropout: Layer {
    public let p: Float
    public let channels: Bool
    private var mask: [Float] = []

    /// - Parameter channels: true for Dropout2d.
    public init(p: Float, channels: Bool = false) {
        precondition(p >= 0 && p < 1)
        self.p = p
        self.channels = channels
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        guard ctx.training, p > 0 else {
            mask = []
            return x
        }
        let units = channels ? x.shape[0] * x.shape[1] : x.count
        let per = x.count / units, scale = 1 / (1 - p)
        mask = (0 ..< units).map { _ in Float.random(in: 0 ..< 1, using: &ctx.rng) < p ? 0 : scale }
        let y = Tensor(uninitialized: x.shape)
        let (px, py) = (x.pointer, y.pointer)
        mask.withUnsafeBufferPointer { m in
            for u in 0 ..< units { for i in u * per ..< (u + 1) * per { py[i] = px[i] * m[u] } }
        }
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard !mask.isEmpty else { return dy }
        let per = dy.count / mask.count
        let dx = Tensor(uninitialized: dy.shape)
        let (pdy, pdx) = (dy.pointer, dx.pointer)
        mask.withUnsafeBufferPointer { m in
            for u in 0 ..< m.count { for i in u * per ..< (u + 1) * per { pdx[i] = pdy[i] * m[u] } }
        }
        return dx
    }
}
