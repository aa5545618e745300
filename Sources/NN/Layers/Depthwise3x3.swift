/// MobileNet's depthwise convolution (3x3 kernel, padding 1, stride 1 or 2, one channel per group), one plane at a
/// time and vectorised along rows.
///
/// Each input plane is copied once into a zero-padded scratch plane; for stride 2 each padded row is stored as its
/// even columns then its odd columns, so that output column `ox` reads even `ox`, odd `ox` and even `ox + 1`. Every
/// output vector is then nine unaligned loads and multiply-adds with no edge cases, and the edges come from the
/// padding. Backward uses the same planes: the input gradient of stride 1 is the forward of the padded output
/// gradient with the kernel turned 180 degrees; of stride 2, it is accumulated into a split padded plane and folded
/// back. `Conv2d`'s general depthwise loops are the reference these are tested against.
enum Depthwise3x3 {
    typealias V = SIMDLoop.Vector
    static let lanes = V.scalarCount

    /// The scratch layout of one h x w input plane.
    struct Plane {
        let h: Int, w: Int, stride: Int, ho: Int, wo: Int
        /// Floats per scratch row, and (stride 2) where the odd columns of a row start.
        let pitch: Int, half: Int
        /// Floats of one scratch plane: h + 2 padded rows.
        var count: Int { (h + 2) * pitch }

        init(h: Int, w: Int, stride: Int) {
            precondition(stride == 1 || stride == 2, "Depthwise3x3: stride \(stride)")
            self.h = h
            self.w = w
            self.stride = stride
            ho = (h - 1) / stride + 1
            wo = (w - 1) / stride + 1
            let columns = (wo + Depthwise3x3.lanes - 1) / Depthwise3x3.lanes * Depthwise3x3.lanes   // whole vectors
            // stride 1 reads padded columns up to `columns + 1`; stride 2 reads even ones up to `columns`.
            half = stride == 1 ? 0 : columns + Depthwise3x3.lanes
            pitch = stride == 1 ? columns + Depthwise3x3.lanes : 2 * half
        }

        /// A zeroed scratch plane (its padding stays zero: `load` writes the same positions for every plane).
        func allocate() -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            p.initialize(repeating: 0, count: count)
            return p
        }

        /// Copies plane `x` (h x w) into scratch `s`.
        func load(_ x: UnsafePointer<Float>, into s: UnsafeMutablePointer<Float>) {
            for r in 0 ..< h {
                let src = x + r * w, row = s + (r + 1) * pitch
                if stride == 1 {
                    (row + 1).update(from: src, count: w)
                } else {
                    // padded column c + 1: odd c -> even half at (c + 1) / 2, even c -> odd half at c / 2
                    Geometry.gatherEven(src + 1, into: row + 1, count: w / 2)
                    Geometry.gatherEven(src, into: row + half, count: (w + 1) / 2)
                }
            }
        }
    }

    /// The nine taps of one 3x3 kernel, row-major, each broadcast; `flipped` turns the kernel by 180 degrees.
    struct Taps {
        let k0: V, k1: V, k2: V, k3: V, k4: V, k5: V, k6: V, k7: V, k8: V

        @inline(__always)
        init(_ k: UnsafePointer<Float>, flipped: Bool = false) {
            func t(_ i: Int) -> V { V(repeating: k[flipped ? 8 - i : i]) }
            (k0, k1, k2, k3, k4, k5, k6, k7, k8) = (t(0), t(1), t(2), t(3), t(4), t(5), t(6), t(7), t(8))
        }
    }

    /// out (ho x wo) = (accumulate ? out : 0) + the 3x3 correlation of scratch plane `s` with `k`.
    /// - Parameters:
    ///   - s: scratch plane of `g` (`Plane.load`)
    static func forward(_ s: UnsafePointer<Float>, _ k: Taps, _ g: Plane, into out: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        let (k0, k1, k2, k3, k4, k5, k6, k7, k8) = (k.k0, k.k1, k.k2, k.k3, k.k4, k.k5, k.k6, k.k7, k.k8)
        let pitch = g.pitch, half = g.half, wo = g.wo
        for oy in 0 ..< g.ho {
            let r0 = s + oy * g.stride * pitch, r1 = r0 + pitch, r2 = r1 + pitch, dst = out + oy * wo
            var ox = 0
            while ox < wo {
                var a: V
                if g.stride == 1 {
                    a = k0 * SIMDLoop.load(r0 + ox)
                    a.addProduct(k1, SIMDLoop.load(r0 + ox + 1)); a.addProduct(k2, SIMDLoop.load(r0 + ox + 2))
                    a.addProduct(k3, SIMDLoop.load(r1 + ox)); a.addProduct(k4, SIMDLoop.load(r1 + ox + 1)); a.addProduct(k5, SIMDLoop.load(r1 + ox + 2))
                    a.addProduct(k6, SIMDLoop.load(r2 + ox)); a.addProduct(k7, SIMDLoop.load(r2 + ox + 1)); a.addProduct(k8, SIMDLoop.load(r2 + ox + 2))
                } else {
                    a = k0 * SIMDLoop.load(r0 + ox)
                    a.addProduct(k1, SIMDLoop.load(r0 + half + ox)); a.addProduct(k2, SIMDLoop.load(r0 + ox + 1))
                    a.addProduct(k3, SIMDLoop.load(r1 + ox)); a.addProduct(k4, SIMDLoop.load(r1 + half + ox)); a.addProduct(k5, SIMDLoop.load(r1 + ox + 1))
                    a.addProduct(k6, SIMDLoop.load(r2 + ox)); a.addProduct(k7, SIMDLoop.load(r2 + half + ox)); a.addProduct(k8, SIMDLoop.load(r2 + ox + 1))
                }
                let full = ox + lanes <= wo
                if accumulate {
                    if full {
                        a += SIMDLoop.load(dst + ox)
                    } else {
                        for i in 0 ..< wo - ox { a[i] += dst[ox + i] }
                    }
                }
                if full {
                    SIMDLoop.store(a, dst + ox)
                } else {
                    for i in 0 ..< wo - ox { dst[ox + i] = a[i] }
                }
                ox += lanes
            }
        }
    }

    /// Backward of one plane pair: dk (9) += the kernel's gradient and dx (h x w) += the input's.
    /// - Parameters:
    ///   - xs: scratch plane of the input (`g`)
    ///   - dys: scratch plane of the output gradient, laid out as `Plane(h: g.ho, w: g.wo, stride: 1)`
    ///   - k: the kernel's taps; `flipped`: turned (used for stride 1)
    ///   - acc: for stride 2, a zeroed scratch plane of `g`'s layout, returned zeroed
    static func backward(_ xs: UnsafePointer<Float>, _ dys: UnsafePointer<Float>, _ g: Plane, kernel k: Taps, flipped: Taps,
                         dk: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>, acc: UnsafeMutablePointer<Float>) {
        let dyPlane = Plane(h: g.ho, w: g.wo, stride: 1)
        let dp = dyPlane.pitch, pitch = g.pitch, half = g.half, wo = g.wo
        // Kernel gradient: dk[ki, kj] = sum over (oy, ox) of dy[oy, ox] * padded x[s oy + ki, s ox + kj]; the padded dy
        // row is zero past wo, so whole vectors need no tail.
        var g0 = V(), g1 = V(), g2 = V(), g3 = V(), g4 = V(), g5 = V(), g6 = V(), g7 = V(), g8 = V()
        for oy in 0 ..< g.ho {
            let d = dys + (oy + 1) * dp + 1
            let r0 = xs + oy * g.stride * pitch, r1 = r0 + pitch, r2 = r1 + pitch
            var ox = 0
            while ox < wo {
                let v = SIMDLoop.load(d + ox)
                if g.stride == 1 {
                    g0.addProduct(v, SIMDLoop.load(r0 + ox)); g1.addProduct(v, SIMDLoop.load(r0 + ox + 1)); g2.addProduct(v, SIMDLoop.load(r0 + ox + 2))
                    g3.addProduct(v, SIMDLoop.load(r1 + ox)); g4.addProduct(v, SIMDLoop.load(r1 + ox + 1)); g5.addProduct(v, SIMDLoop.load(r1 + ox + 2))
                    g6.addProduct(v, SIMDLoop.load(r2 + ox)); g7.addProduct(v, SIMDLoop.load(r2 + ox + 1)); g8.addProduct(v, SIMDLoop.load(r2 + ox + 2))
                } else {
                    g0.addProduct(v, SIMDLoop.load(r0 + ox)); g1.addProduct(v, SIMDLoop.load(r0 + half + ox)); g2.addProduct(v, SIMDLoop.load(r0 + ox + 1))
                    g3.addProduct(v, SIMDLoop.load(r1 + ox)); g4.addProduct(v, SIMDLoop.load(r1 + half + ox)); g5.addProduct(v, SIMDLoop.load(r1 + ox + 1))
                    g6.addProduct(v, SIMDLoop.load(r2 + ox)); g7.addProduct(v, SIMDLoop.load(r2 + half + ox)); g8.addProduct(v, SIMDLoop.load(r2 + ox + 1))
                }
                ox += lanes
            }
        }
        dk[0] += g0.sum(); dk[1] += g1.sum(); dk[2] += g2.sum()
        dk[3] += g3.sum(); dk[4] += g4.sum(); dk[5] += g5.sum()
        dk[6] += g6.sum(); dk[7] += g7.sum(); dk[8] += g8.sum()

        if g.stride == 1 {
            // dx[r, c] = sum of k[ki, kj] dy[r + 1 - ki, c + 1 - kj]: the padded dy correlated with the turned kernel.
            forward(dys, flipped, dyPlane, into: dx, accumulate: true)
            return
        }
        // Stride 2: scatter k[ki, kj] dy[oy, ox] into padded row 2 oy + ki, column 2 ox + kj (even half: ox, ox + 1;
        // odd half: ox), then fold the interior back into dx.
        let (k0, k1, k2, k3, k4, k5, k6, k7, k8) = (k.k0, k.k1, k.k2, k.k3, k.k4, k.k5, k.k6, k.k7, k.k8)
        @inline(__always) func add(_ p: UnsafeMutablePointer<Float>, _ v: V) { SIMDLoop.store(SIMDLoop.load(p) + v, p) }
        for oy in 0 ..< g.ho {
            let d = dys + (oy + 1) * dp + 1
            let a0 = acc + 2 * oy * pitch, a1 = a0 + pitch, a2 = a1 + pitch
            var ox = 0
            while ox < wo {
                let v = SIMDLoop.load(d + ox)
                add(a0 + ox, k0 * v); add(a0 + half + ox, k1 * v); add(a0 + ox + 1, k2 * v)
                add(a1 + ox, k3 * v); add(a1 + half + ox, k4 * v); add(a1 + ox + 1, k5 * v)
                add(a2 + ox, k6 * v); add(a2 + half + ox, k7 * v); add(a2 + ox + 1, k8 * v)
                ox += lanes
            }
        }
        let w = g.w
        for r in 0 ..< g.h {
            let row = acc + (r + 1) * pitch, dst = dx + r * w
            Geometry.scatterAddEven(row + half, into: dst, count: (w + 1) / 2)   // even c: odd half at c / 2
            Geometry.scatterAddEven(row + 1, into: dst + 1, count: w / 2)        // odd c: even half at (c + 1) / 2
        }
        acc.update(repeating: 0, count: g.count)
    }
}
