/// Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, padding 1, no dilation, one group (Lavin & Gray 2016).
///
/// A 4x4 input tile d (tiles start every 2 pixels) gives a 2x2 output tile Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Over all
/// tiles and channels that is 16 independent products, one per position ξ of the transformed 4x4 tile:
/// M_ξ (O x T) = U_ξ (O x C) · V_ξ (C x T), with U = G g Gᵀ per (out, in) channel pair and V = Bᵀ d B per tile and
/// input channel: 16 · O · C · T multiplications where im2col needs 36 · O · C · T (2.25x fewer), and the
/// transformed input is 4x the input where im2col's unrolled input is 9x.
///
/// Backward uses the adjoint transforms: dM = A dY Aᵀ per tile, dU_ξ = dM_ξ V_ξᵀ (folded back by dg = Gᵀ dU G),
/// dV_ξ = U_ξᵀ dM_ξ (folded back by dd = B dV Bᵀ, summed where tiles overlap). The transforms are exact, so the
/// gradients are those of the convolution, not an approximation of it.
///
/// Layouts: U [16][O][C], V and dV [16][C][T], M and dM [16][O][T], where tile t = (image * th + ty) * tw + tx.
/// The transforms run 8 tiles of a row at once (one SIMD8 per tile position); the 16 products run in parallel, each
/// a single-threaded GEMM.
struct Winograd {
    /// Images in this call, channels in and out, plane size.
    let n: Int, c: Int, o: Int, h: Int, w: Int
    /// Tiles per image: rows, columns; columns rounded up to whole vectors.
    let th: Int, tw: Int, tw8: Int
    /// Zero-padded input plane: rows 2 th + 2, columns 2 tw8 + 2 (pixel (y, x) at (y + 1, x + 1)).
    let hp: Int, wp: Int

    init(n: Int, c: Int, o: Int, h: Int, w: Int) {
        self.n = n
        self.c = c
        self.o = o
        self.h = h
        self.w = w
        th = (h + 1) / 2
        tw = (w + 1) / 2
        tw8 = (tw + 7) / 8 * 8
        hp = 2 * th + 2
        wp = 2 * tw8 + 2
    }

    /// Whether a convolution can run this way.
    static func applies(_ conv: Conv2d) -> Bool {
        conv.kernel == (3, 3) && conv.stride == 1 && conv.padding == 1 && conv.dilation == 1 && conv.groups == 1
    }

    /// Tiles in this call.
    var tiles: Int { n * th * tw }
    /// Floats of the larger of the transformed input and output (what a call holds at once, twice).
    static func floats(images: Int, c: Int, o: Int, h: Int, w: Int) -> Int { 16 * max(c, o) * images * ((h + 1) / 2) * ((w + 1) / 2) }

    typealias V8 = SIMD8<Float>

    // MARK: weights

    /// U[ξ][oc][ci] = (G g Gᵀ)[ξ] for weights g (O, C, 3, 3); 8 input channels at a time (72 contiguous floats).
    func transformWeights(_ g: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        let c = c, o = o
        Parallel.forRange(o, grain: 16) { r in
            let k = UnsafeMutablePointer<V8>.allocate(capacity: 9), t = UnsafeMutablePointer<V8>.allocate(capacity: 12)   // g, G g (4 x 3)
            defer { k.deallocate(); t.deallocate() }
            for oc in r {
                for ci0 in stride(from: 0, to: c, by: 8) {
                    let lanes = min(8, c - ci0), src = g + (oc * c + ci0) * 9
                    for e in 0 ..< 9 {
                        var v = V8.zero
                        for l in 0 ..< lanes { v[l] = src[l * 9 + e] }
                        k[e] = v
                    }
                    for j in 0 ..< 3 {
                        let g0 = k[j], g1 = k[3 + j], g2 = k[6 + j]
                        t[j] = g0
                        t[3 + j] = 0.5 * (g0 + g1 + g2)
                        t[6 + j] = 0.5 * (g0 - g1 + g2)
                        t[9 + j] = g2
                    }
                    for i in 0 ..< 4 {
                        let a0 = t[3 * i], a1 = t[3 * i + 1], a2 = t[3 * i + 2]
                        let row = u + (i * 4 * o + oc) * c + ci0, next = o * c
                        Winograd.store(a0, row, lanes)
                        Winograd.store(0.5 * (a0 + a1 + a2), row + next, lanes)
                        Winograd.store(0.5 * (a0 - a1 + a2), row + 2 * next, lanes)
                        Winograd.store(a2, row + 3 * next, lanes)
                    }
                }
            }
        }
    }

    /// dW[oc][ci] += (Gᵀ dU G) for the transformed weight gradient dU [16][O][C]; 8 input channels at a time.
    func accumulateWeightGradient(_ du: UnsafePointer<Float>, into dw: UnsafeMutablePointer<Float>) {
        let c = c, o = o
        Parallel.forRange(o, grain: 16) { r in
            let t = UnsafeMutablePointer<V8>.allocate(capacity: 12)   // Gᵀ dU: 3 x 4
            defer { t.deallocate() }
            for oc in r {
                for ci0 in stride(from: 0, to: c, by: 8) {
                    let lanes = min(8, c - ci0), live = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< Int32(lanes)
                    let src = du + oc * c + ci0, next = o * c
                    for j in 0 ..< 4 {
                        let x0 = Winograd.load(src + j * next, live), x1 = Winograd.load(src + (4 + j) * next, live)
                        let x2 = Winograd.load(src + (8 + j) * next, live), x3 = Winograd.load(src + (12 + j) * next, live)
                        t[j] = x0 + 0.5 * (x1 + x2)
                        t[4 + j] = 0.5 * (x1 - x2)
                        t[8 + j] = 0.5 * (x1 + x2) + x3
                    }
                    let dst = dw + (oc * c + ci0) * 9
                    for i in 0 ..< 3 {
                        let a0 = t[4 * i], a1 = t[4 * i + 1], a2 = t[4 * i + 2], a3 = t[4 * i + 3]
                        let e0 = a0 + 0.5 * (a1 + a2), e1 = 0.5 * (a1 - a2), e2 = 0.5 * (a1 + a2) + a3
                        for l in 0 ..< lanes {
                            dst[l * 9 + 3 * i] += e0[l]
                            dst[l * 9 + 3 * i + 1] += e1[l]
                            dst[l * 9 + 3 * i + 2] += e2[l]
                        }
                    }
                }
            }
        }
    }

    // MARK: input

    /// V[ξ][ci][t] = (Bᵀ d B)[ξ] for every tile d of the input x (n, C, h, w).
    func transformInput(_ x: UnsafePointer<Float>, into v: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        Parallel.forRange(n * c, grain: 2) { r in
            let pad = UnsafeMutablePointer<Float>.allocate(capacity: g.hp * g.wp + 16), rows = UnsafeMutablePointer<V8>.allocate(capacity: 16)
            defer { pad.deallocate(); rows.deallocate() }
            pad.initialize(repeating: 0, count: g.hp * g.wp + 16)
            for plane in r {
                let b = plane / g.c, ci = plane % g.c, src = x + plane * g.h * g.w
                for y in 0 ..< g.h { (pad + (y + 1) * g.wp + 1).update(from: src + y * g.w, count: g.w) }
                let out = v + ci * t + b * g.th * g.tw
                for ty in 0 ..< g.th {
                    for tx0 in stride(from: 0, to: g.tw, by: 8) {
                        let lanes = min(8, g.tw - tx0)
                        // d B on each of the 4 rows: columns (2tx .. 2tx+3) = evens/odds of two 16-wide loads.
                        for i in 0 ..< 4 {
                            let p = UnsafeRawPointer(pad + (2 * ty + i) * g.wp + 2 * tx0)
                            let a = p.loadUnaligned(as: SIMD16<Float>.self), e = p.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
                            let d0 = a.evenHalf, d1 = a.oddHalf, d2 = e.evenHalf, d3 = e.oddHalf
                            rows[4 * i] = d0 - d2
                            rows[4 * i + 1] = d1 + d2
                            rows[4 * i + 2] = d2 - d1
                            rows[4 * i + 3] = d1 - d3
                        }
                        let base = out + ty * g.tw + tx0
                        for j in 0 ..< 4 {
                            let r0 = rows[j], r1 = rows[4 + j], r2 = rows[8 + j], r3 = rows[12 + j]
                            Winograd.store(r0 - r2, base + j * g.c * t, lanes)
                            Winograd.store(r1 + r2, base + (4 + j) * g.c * t, lanes)
                            Winograd.store(r2 - r1, base + (8 + j) * g.c * t, lanes)
                            Winograd.store(r1 - r3, base + (12 + j) * g.c * t, lanes)
                        }
                    }
                }
            }
        }
    }

    /// dx (n, C, h, w) = the adjoint of `transformInput` applied to dV: each tile's B dV Bᵀ, summed where tiles overlap.
    func foldInputGradient(_ dv: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        Parallel.forRange(n * c, grain: 2) { r in
            let pad = UnsafeMutablePointer<Float>.allocate(capacity: g.hp * g.wp + 16), cols = UnsafeMutablePointer<V8>.allocate(capacity: 16)
            defer { pad.deallocate(); cols.deallocate() }
            for plane in r {
                let b = plane / g.c, ci = plane % g.c
                pad.initialize(repeating: 0, count: g.hp * g.wp + 16)
                let src = dv + ci * t + b * g.th * g.tw
                for ty in 0 ..< g.th {
                    for tx0 in stride(from: 0, to: g.tw, by: 8) {
                        let lanes = min(8, g.tw - tx0)
                        let live = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< Int32(lanes)
                        let base = src + ty * g.tw + tx0
                        // B dV: combine the 4 rows of each column.
                        for j in 0 ..< 4 {
                            let v0 = Winograd.load(base + j * g.c * t, live), v1 = Winograd.load(base + (4 + j) * g.c * t, live)
                            let v2 = Winograd.load(base + (8 + j) * g.c * t, live), v3 = Winograd.load(base + (12 + j) * g.c * t, live)
                            cols[j] = v0
                            cols[4 + j] = v1 - v2 + v3
                            cols[8 + j] = v1 + v2 - v0
                            cols[12 + j] = -v3
                        }
                        // (B dV) Bᵀ on each row, added into padded rows 2ty + i at columns 2tx .. 2tx + 3.
                        for i in 0 ..< 4 {
                            let f0 = cols[4 * i], f1 = cols[4 * i + 1], f2 = cols[4 * i + 2], f3 = cols[4 * i + 3]
                            let row = pad + (2 * ty + i) * g.wp + 2 * tx0
                            Winograd.add(Winograd.interleave(f0, f1 - f2 + f3), row)
                            Winograd.add(Winograd.interleave(f1 + f2 - f0, -f3), row + 2)
                        }
                    }
                }
                let dst = dx + plane * g.h * g.w
                for y in 0 ..< g.h { (dst + y * g.w).update(from: pad + (y + 1) * g.wp + 1, count: g.w) }
            }
        }
    }

    // MARK: output

    /// y (n, O, h, w) = Aᵀ M A per tile, the 2x2 outputs of each tile.
    func transformOutput(_ m: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        // Straight into y when every tile's outputs lie inside the plane; otherwise through a padded plane.
        let direct = w % 16 == 0 && h % 2 == 0
        let pw = 2 * tw8, ph = 2 * th
        Parallel.forRange(n * o, grain: 2) { r in
            let pad = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: ph * pw), s = UnsafeMutablePointer<V8>.allocate(capacity: 8)
            defer { pad?.deallocate(); s.deallocate() }
            for plane in r {
                let b = plane / g.o, oc = plane % g.o
                let src = m + oc * t + b * g.th * g.tw
                let dst = pad ?? (y + plane * g.h * g.w), stride = direct ? g.w : pw
                for ty in 0 ..< g.th {
                    for tx0 in Swift.stride(from: 0, to: g.tw, by: 8) {
                        let base = src + ty * g.tw + tx0
                        // Aᵀ M: two rows from the four.
                        for j in 0 ..< 4 {
                            let m0 = Winograd.load(base + j * g.o * t), m1 = Winograd.load(base + (4 + j) * g.o * t)
                            let m2 = Winograd.load(base + (8 + j) * g.o * t), m3 = Winograd.load(base + (12 + j) * g.o * t)
                            s[j] = m0 + m1 + m2
                            s[4 + j] = m1 - m2 - m3
                        }
                        for i in 0 ..< 2 {
                            let a0 = s[4 * i], a1 = s[4 * i + 1], a2 = s[4 * i + 2], a3 = s[4 * i + 3]
                            Winograd.store(Winograd.interleave(a0 + a1 + a2, a1 - a2 - a3), dst + (2 * ty + i) * stride + 2 * tx0)
                        }
                    }
                }
                if let pad {
                    let out = y + plane * g.h * g.w
                    for yy in 0 ..< g.h { (out + yy * g.w).update(from: pad + yy * pw, count: g.w) }
                }
            }
        }
    }

    /// dM[ξ][oc][t] = (A dY Aᵀ)[ξ] for every 2x2 tile of the output gradient dy (n, O, h, w); outside the plane is 0.
    func transformOutputGradient(_ dy: UnsafePointer<Float>, into dm: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        let direct = w % 16 == 0 && h % 2 == 0
        let pw = 2 * tw8 + 16, ph = 2 * th
        Parallel.forRange(n * o, grain: 2) { r in
            let pad = direct ? nil : UnsafeMutablePointer<Float>.allocate(capacity: ph * pw), s = UnsafeMutablePointer<V8>.allocate(capacity: 8)
            defer { pad?.deallocate(); s.deallocate() }
            pad?.initialize(repeating: 0, count: ph * pw)
            for plane in r {
                let b = plane / g.o, oc = plane % g.o
                let src = UnsafePointer(dy + plane * g.h * g.w)
                if let pad { for yy in 0 ..< g.h { (pad + yy * pw).update(from: src + yy * g.w, count: g.w) } }
                let from = pad.map { UnsafePointer($0) } ?? src, stride = direct ? g.w : pw
                let out = dm + oc * t + b * g.th * g.tw
                for ty in 0 ..< g.th {
                    for tx0 in Swift.stride(from: 0, to: g.tw, by: 8) {
                        let lanes = min(8, g.tw - tx0)
                        // A dY on each of the 2 rows: [y0, y0 + y1, y0 - y1, -y1].
                        for i in 0 ..< 2 {
                            let p = UnsafeRawPointer(from + (2 * ty + i) * stride + 2 * tx0).loadUnaligned(as: SIMD16<Float>.self)
                            let y0 = p.evenHalf, y1 = p.oddHalf
                            s[4 * i] = y0
                            s[4 * i + 1] = y0 + y1
                            s[4 * i + 2] = y0 - y1
                            s[4 * i + 3] = -y1
                        }
                        let base = out + ty * g.tw + tx0
                        for j in 0 ..< 4 {
                            let a0 = s[j], a1 = s[4 + j]
                            Winograd.store(a0, base + j * g.o * t, lanes)
                            Winograd.store(a0 + a1, base + (4 + j) * g.o * t, lanes)
                            Winograd.store(a0 - a1, base + (8 + j) * g.o * t, lanes)
                            Winograd.store(-a1, base + (12 + j) * g.o * t, lanes)
                        }
                    }
                }
            }
        }
    }

    // MARK: products

    /// M_ξ = U_ξ V_ξ for the 16 positions, in parallel (each product single-threaded).
    func multiply(_ u: UnsafePointer<Float>, _ v: UnsafePointer<Float>, into m: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        Parallel.forRange(16) { r in
            for xi in r {
                BLAS.gemm(m: g.o, n: t, k: g.c, a: u + xi * g.o * g.c, lda: g.c, b: v + xi * g.c * t, ldb: t,
                          c: m + xi * g.o * t, ldc: t, split: false)
            }
        }
    }

    /// dU_ξ += dM_ξ V_ξᵀ, then dV_ξ = U_ξᵀ dM_ξ written over V_ξ (V is not needed after its dU).
    func multiplyBackward(_ u: UnsafePointer<Float>, _ dm: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                          accumulating du: UnsafeMutablePointer<Float>) {
        let g = self, t = tiles
        Parallel.forRange(16) { r in
            for xi in r {
                let vx = v + xi * g.c * t, dmx = dm + xi * g.o * t
                BLAS.gemm(transB: true, m: g.o, n: g.c, k: t, a: dmx, lda: t, b: vx, ldb: t, beta: 1,
                          c: du + xi * g.o * g.c, ldc: g.c, split: false)
                BLAS.gemm(transA: true, m: g.c, n: t, k: g.o, a: u + xi * g.o * g.c, lda: g.c, b: dmx, ldb: t,
                          c: vx, ldc: t, split: false)
            }
        }
    }

    // MARK: vectors

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

    /// Loads 8 lanes, zero where `live` is false (tiles past the row's end must not leak into a fold).
    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ live: SIMDMask<SIMD8<Int32>.MaskStorage>) -> V8 { V8.zero.replacing(with: load(p), where: live) }

    @inline(__always)
    static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
        if lanes == 8 {
            UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
        } else {
            for l in 0 ..< lanes { p[l] = v[l] }
        }
    }

    @inline(__always)
    static func store(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self) }

    @inline(__always)
    static func add(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        store(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) + v, p)
    }

    /// (a0, b0, a1, b1, ..., a7, b7).
    @inline(__always)
    static func interleave(_ a: V8, _ b: V8) -> SIMD16<Float> {
        SIMD16(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
    }
}
