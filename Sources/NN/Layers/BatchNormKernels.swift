/// BatchNorm's per-plane loops in 8-wide SIMD (one AVX register per vector, so constants stay in registers) (the plane is one image's channel, `count` contiguous floats).
enum BatchNormKernels {
    typealias V = SIMDLoop.Vector
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V { SIMDLoop.load(p) }
    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { SIMDLoop.store(v, p) }
    @inline(__always) static func clamp(_ v: V, _ lo: V, _ hi: V) -> V { SIMDLoop.clamp(v, lo, hi) }

    /// Sum and sum of squares of x[0 ..< count].
    @inline(__always)
    static func moments(_ x: UnsafePointer<Float>, _ count: Int) -> (Float, Float) {
        var s = V(), q = V(), i = 0
        while i + 8 <= count { let v = load(x + i); s += v; q += v * v; i += 8 }
        var s1 = s.sum(), s2 = q.sum()
        while i < count { s1 += x[i]; s2 += x[i] * x[i]; i += 1 }
        return (s1, s2)
    }

    /// y = clamp((x - mean) * istd * gamma + beta, lo, hi).
    @inline(__always)
    static func normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ count: Int,
                          mean: Float, istd: Float, gamma: Float, beta: Float, lo: Float, hi: Float) {
        let vm = V(repeating: mean), vi = V(repeating: istd), vg = V(repeating: gamma), vb = V(repeating: beta)
        let vlo = V(repeating: lo), vhi = V(repeating: hi)
        var i = 0
        while i + 8 <= count {
            store(clamp((load(x + i) - vm) * vi * vg + vb, vlo, vhi), y + i)
            i += 8
        }
        while i < count {
            y[i] = min(max((x[i] - mean) * istd * gamma + beta, lo), hi)
            i += 1
        }
    }

    /// Sums of the gated gradient d and of d * xhat, where xhat = (x - mean) * istd (as `normalize` computes it) and
    /// d = dy where lo < xhat * gamma + beta < hi, else 0.
    @inline(__always)
    static func gatedSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, mean: Float, istd: Float,
                          gamma: Float, beta: Float, lo: Float, hi: Float) -> (Float, Float) {
        let vm = V(repeating: mean), vi = V(repeating: istd)
        let vg = V(repeating: gamma), vb = V(repeating: beta), vlo = V(repeating: lo), vhi = V(repeating: hi)
        var s = V(), sx = V(), i = 0
        while i + 8 <= count {
            let xh = (load(x + i) - vm) * vi, y = xh * vg + vb
            let d = V().replacing(with: load(dy + i), where: (y .> vlo) .& (y .< vhi))
            s += d; sx += d * xh
            i += 8
        }
        var s1 = s.sum(), s2 = sx.sum()
        while i < count {
            let xh = (x[i] - mean) * istd, y = xh * gamma + beta
            let d = y > lo && y < hi ? dy[i] : 0
            s1 += d; s2 += d * xh
            i += 1
        }
        return (s1, s2)
    }

    /// dx = k * (d - meanDy - xhat * meanDyx) in training, k * d in evaluation (meanDy = meanDyx = 0), xhat and d as
    /// above.
    @inline(__always)
    static func inputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, _ count: Int,
                              mean: Float, istd: Float, k: Float, meanDy: Float, meanDyx: Float, gamma: Float, beta: Float,
                              lo: Float, hi: Float) {
        let vk = V(repeating: k), vm = V(repeating: meanDy), vmx = V(repeating: meanDyx), vmean = V(repeating: mean), vi = V(repeating: istd)
        let vg = V(repeating: gamma), vb = V(repeating: beta), vlo = V(repeating: lo), vhi = V(repeating: hi)
        var i = 0
        while i + 8 <= count {
            let xh = (load(x + i) - vmean) * vi, y = xh * vg + vb
            let d = V().replacing(with: load(dy + i), where: (y .> vlo) .& (y .< vhi))
            store(vk * (d - vm - xh * vmx), dx + i)
            i += 8
        }
        while i < count {
            let xh = (x[i] - mean) * istd, y = xh * gamma + beta
            let d = y > lo && y < hi ? dy[i] : 0
            dx[i] = k * (d - meanDy - xh * meanDyx)
            i += 1
        }
    }
}
