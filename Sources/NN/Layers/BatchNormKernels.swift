/// BatchNorm's per-plane loops in 16-wide SIMD (the plane is one image's channel, `count` contiguous floats).
enum BatchNormKernels {
    typealias V = SIMD16<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// Sum and sum of squares of x[0 ..< count].
    @inline(__always)
    static func moments(_ x: UnsafePointer<Float>, _ count: Int) -> (Float, Float) {
        var s = V(), q = V(), i = 0
        while i + 16 <= count { let v = load(x + i); s += v; q += v * v; i += 16 }
        var s1 = s.sum(), s2 = q.sum()
        while i < count { s1 += x[i]; s2 += x[i] * x[i]; i += 1 }
        return (s1, s2)
    }

    /// xhat = (x - mean) * istd (stored when `xhat` is given); y = clamp(xhat * gamma + beta, lo, hi).
    @inline(__always)
    static func normalize(_ x: UnsafePointer<Float>, _ xhat: UnsafeMutablePointer<Float>?, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                          mean: Float, istd: Float, gamma: Float, beta: Float, lo: Float, hi: Float) {
        let vm = V(repeating: mean), vi = V(repeating: istd), vg = V(repeating: gamma), vb = V(repeating: beta)
        let vlo = V(repeating: lo), vhi = V(repeating: hi)
        var i = 0
        while i + 16 <= count {
            let v = (load(x + i) - vm) * vi
            if let xhat { store(v, xhat + i) }
            store((v * vg + vb).clamped(lowerBound: vlo, upperBound: vhi), y + i)
            i += 16
        }
        while i < count {
            let v = (x[i] - mean) * istd
            xhat?[i] = v
            y[i] = min(max(v * gamma + beta, lo), hi)
            i += 1
        }
    }

    /// Sums of the gated gradient d and of d * xhat, where d = dy where lo < xhat * gamma + beta < hi, else 0.
    @inline(__always)
    static func gatedSums(_ dy: UnsafePointer<Float>, _ xhat: UnsafePointer<Float>, _ count: Int,
                          gamma: Float, beta: Float, lo: Float, hi: Float) -> (Float, Float) {
        let vg = V(repeating: gamma), vb = V(repeating: beta), vlo = V(repeating: lo), vhi = V(repeating: hi)
        var s = V(), sx = V(), i = 0
        while i + 16 <= count {
            let xh = load(xhat + i), y = xh * vg + vb
            let d = V().replacing(with: load(dy + i), where: (y .> vlo) .& (y .< vhi))
            s += d; sx += d * xh
            i += 16
        }
        var s1 = s.sum(), s2 = sx.sum()
        while i < count {
            let y = xhat[i] * gamma + beta
            let d = y > lo && y < hi ? dy[i] : 0
            s1 += d; s2 += d * xhat[i]
            i += 1
        }
        return (s1, s2)
    }

    /// dx = k * (d - meanDy - xhat * meanDyx) in training, k * d in evaluation (meanDy = meanDyx = 0), d gated as above.
    @inline(__always)
    static func inputGradient(_ dy: UnsafePointer<Float>, _ xhat: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int,
                              k: Float, meanDy: Float, meanDyx: Float, gamma: Float, beta: Float, lo: Float, hi: Float) {
        let vk = V(repeating: k), vm = V(repeating: meanDy), vmx = V(repeating: meanDyx)
        let vg = V(repeating: gamma), vb = V(repeating: beta), vlo = V(repeating: lo), vhi = V(repeating: hi)
        var i = 0
        while i + 16 <= count {
            let xh = load(xhat + i), y = xh * vg + vb
            let d = V().replacing(with: load(dy + i), where: (y .> vlo) .& (y .< vhi))
            store(vk * (d - vm - xh * vmx), dx + i)
            i += 16
        }
        while i < count {
            let y = xhat[i] * gamma + beta
            let d = y > lo && y < hi ? dy[i] : 0
            dx[i] = k * (d - meanDy - xhat[i] * meanDyx)
            i += 1
        }
    }
}
