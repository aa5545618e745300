import Foundation

/// Winograd F(2x2, 3x3) convolution: 3x3 kernels, stride 1, padding 1, no dilation, one group (Lavin & Gray 2016).
///
/// A 4x4 input tile d (tiles start every 2 pixels) gives a 2x2 output tile Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A. Over all
/// tiles and channels that is 16 independent products, one per position ξ of the transformed 4x4 tile:
/// M_ξ (O x T) = U_ξ (O x C) · V_ξ (C x T), with U = G g Gᵀ per (out, in) channel pair and V = Bᵀ d B per tile and
/// input channel: 16 · O · C · T multiplications where im2col needs 36 · O · C · T (2.25x fewer).
///
/// Backward uses the adjoint transforms: dM = A dY Aᵀ per tile, dU_ξ = dM_ξ V_ξᵀ (folded back by dg = Gᵀ dU G),
/// dV_ξ = U_ξᵀ dM_ξ (folded back by dd = B dV Bᵀ, summed where tiles overlap). The transforms are exact, so the
/// gradients are those of the convolution, not an approximation of it.
///
/// The transformed tensors are 4x the input and output, so making them whole would be bound by memory bandwidth.
/// Instead the tiles are cut into blocks of whole tile rows small enough to stay in a core's cache, and each worker
/// carries its blocks through all steps (transform, 16 single-threaded GEMMs, transform back) on its own. When there
/// are too few blocks to keep the cores busy (small, deep layers) one block at a time is spread over the cores instead:
/// transforms split by channel, the 16 GEMMs by position.
///
/// Layouts within a block of `ld` tiles: U [16][O][C], V and dV [16][C][ld], M and dM [16][O][ld], where tile
/// t = (tile row - first tile row) * tw + tx and tile row = image * th + ty. The transforms run 8 tiles of a row at once.
struct Winograd {
    /// Images, channels in and out, plane size.
    let n: Int, c: Int, o: Int, h: Int, w: Int
    /// Tiles per image: rows, columns; columns rounded up to whole vectors.
    let th: Int, tw: Int, tw8: Int
    /// Width of a zero-padded input row: 2 tw8 + 2 (pixel x at x + 1), so whole vectors never leave it.
    let wp: Int
    /// Tiles a cache-resident block aims for (whole tile rows, at least one).
    let blockTiles: Int
    /// The products' precision (the transforms stay float32).
    let precision: Precision

    init(n: Int, c: Int, o: Int, h: Int, w: Int, blockTiles: Int = 128, precision: Precision = .fp32) {
        self.blockTiles = blockTiles
        self.precision = precision
        self.n = n
        self.c = c
        self.o = o
        self.h = h
        self.w = w
        th = (h + 1) / 2
        tw = (w + 1) / 2
        tw8 = (tw + 7) / 8 * 8
        wp = 2 * tw8 + 2
    }

    /// Whether a convolution can run this way.
    static func applies(_ conv: Conv2d) -> Bool {
        conv.kernel == (3, 3) && conv.stride == 1 && conv.padding == 1 && conv.dilation == 1 && conv.groups == 1
    }

    /// Tile rows over the whole batch.
    var tileRows: Int { n * th }

    typealias V8 = SIMD8<Float>

    // MARK: drivers

    /// y (n, O, h, w) = the convolution of x (n, C, h, w) with weights g (O, C, 3, 3); no bias.
    ///
    /// - Parameter limit: most floats of V (or M) the spread-over-cores mode holds at once.
    func forward(_ x: UnsafePointer<Float>, weights g: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, limit: Int) {
        let ut = Tensor(uninitialized: [16 * o * c]), u = ut.pointer
        defer { withExtendedLifetime(ut) {} }
        transformWeights(g, into: u)
        let us = packed(u, transposed: false)
        let plan = self.plan(limit: limit)
        if plan.fused {
            Parallel.forRange(plan.blocks.count) { range in
                let s = Scratch(self, tiles: plan.rowsPerBlock * tw)
                defer { withExtendedLifetime(s) {} }
                for i in range {
                    let rows = plan.blocks[i]
                    transformInput(x, rows: rows, channels: 0 ..< c, into: s.v, ld: s.ld)
                    multiply(us, s.v, into: s.m, tiles: rows.count * tw, ld: s.ld, positions: 0 ..< 16)
                    transformOutput(s.m, rows: rows, channels: 0 ..< o, into: y, ld: s.ld)
                }
            }
        } else {
            let s = Scratch(self, tiles: plan.rowsPerBlock * tw)
            defer { withExtendedLifetime(s) {} }
            for rows in plan.blocks {
                Parallel.forRange(c, grain: 2) { transformInput(x, rows: rows, channels: $0, into: s.v, ld: s.ld) }
                Parallel.forRange(16) { multiply(us, s.v, into: s.m, tiles: rows.count * tw, ld: s.ld, positions: $0) }
                Parallel.forRange(o, grain: 2) { transformOutput(s.m, rows: rows, channels: $0, into: y, ld: s.ld) }
            }
        }
    }

    /// dx (n, C, h, w, zeroed by the caller) = the input gradient and dW (O, C, 3, 3) += the weight gradient for the
    /// output gradient dy (n, O, h, w); no input gradient when dx is nil.
    func backward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, weights g: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>, limit: Int) {
        let ut = Tensor(uninitialized: [16 * o * c]), dut = Tensor(shape: [16 * o * c]), u = ut.pointer, du = dut.pointer
        defer { withExtendedLifetime((ut, dut)) {} }
        transformWeights(g, into: u)
        let uts = dx == nil ? nil : packed(u, transposed: true)
        let plan = self.plan(limit: limit)
        if plan.fused {
            // Neighbouring tile rows share two input rows, so blocks next to each other must not fold at once:
            // even blocks first, then odd ones. Each worker sums dU on its own; the sums are added in worker order,
            // so a run repeats bit for bit (resume depends on it).
            let workers = min(Parallel.threads, (plan.blocks.count + 1) / 2)
            let locals = (0 ..< workers).map { _ in Tensor(shape: [16 * o * c]) }
            for parity in 0 ..< 2 {
                let mine = Array(Swift.stride(from: parity, to: plan.blocks.count, by: 2))
                Parallel.forWorkers(mine.count, workers: min(workers, mine.count)) { worker, range in
                    let s = Scratch(self, tiles: plan.rowsPerBlock * tw), local = locals[worker].pointer
                    defer { withExtendedLifetime(s) {} }
                    for i in range {
                        let rows = plan.blocks[mine[i]]
                        transformInput(x, rows: rows, channels: 0 ..< c, into: s.v, ld: s.ld)
                        transformOutputGradient(dy, rows: rows, channels: 0 ..< o, into: s.m, ld: s.ld)
                        multiplyBackward(uts, s.m, s.v, accumulating: local, tiles: rows.count * tw, ld: s.ld, positions: 0 ..< 16,
                                         inputGradient: dx != nil)
                        if let dx { foldInputGradient(s.v, rows: rows, channels: 0 ..< c, into: dx, ld: s.ld) }
                    }
                }
            }
            for local in locals { SIMDLoop.zip(du, local.pointer, du, 0 ..< 16 * o * c, +) }
        } else {
            let s = Scratch(self, tiles: plan.rowsPerBlock * tw)
            defer { withExtendedLifetime(s) {} }
            for rows in plan.blocks {
                Parallel.forRange(c, grain: 2) { transformInput(x, rows: rows, channels: $0, into: s.v, ld: s.ld) }
                Parallel.forRange(o, grain: 2) { transformOutputGradient(dy, rows: rows, channels: $0, into: s.m, ld: s.ld) }
                Parallel.forRange(16) {
                    multiplyBackward(uts, s.m, s.v, accumulating: du, tiles: rows.count * tw, ld: s.ld, positions: $0, inputGradient: dx != nil)
                }
                if let dx { Parallel.forRange(c, grain: 2) { foldInputGradient(s.v, rows: rows, channels: $0, into: dx, ld: s.ld) } }
            }
        }
        accumulateWeightGradient(du, into: dw)
    }

    /// How the tile rows are cut: cache-sized blocks, one worker each (fused), when there are enough to keep the
    /// cores busy; otherwise blocks within `limit`, each spread over the cores.
    func plan(limit: Int) -> (fused: Bool, blocks: [Range<Int>], rowsPerBlock: Int) {
        let small = max(1, min(tileRows, blockTiles / tw))
        if (tileRows + small - 1) / small >= 2 * Parallel.threads {
            return (true, Winograd.cut(tileRows, small), small)
        }
        let wide = max(1, min(tileRows, limit / max(1, 16 * max(c, o) * tw)))
        return (false, Winograd.cut(tileRows, wide), wide)
    }

    static func cut(_ count: Int, _ size: Int) -> [Range<Int>] {
        Swift.stride(from: 0, to: count, by: size).map { $0 ..< min(count, $0 + size) }
    }

    /// The transformed input and output (or their gradients) of one block of `ld` tiles, from the tensor pool (fresh
    /// allocations this size would be new pages, and page faults, on every call).
    struct Scratch {
        let vt: Tensor, mt: Tensor, ld: Int
        var v: UnsafeMutablePointer<Float> { vt.pointer }
        var m: UnsafeMutablePointer<Float> { mt.pointer }

        init(_ g: Winograd, tiles: Int) {
            ld = tiles
            // 16 floats of slack: the transforms read whole vectors past a row's last tile.
            vt = Tensor(uninitialized: [16 * g.c * tiles + 16])
            mt = Tensor(uninitialized: [16 * g.o * tiles + 16])
        }
    }

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

    /// V[ξ][ci][t] = (Bᵀ d B)[ξ] for every tile d in tile rows `rows`, input channels `channels` of x (n, C, h, w).
    func transformInput(_ x: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>, into v: UnsafeMutablePointer<Float>, ld: Int) {
        // Four zero-padded input rows (pixel x at x + 1); columns past w + 1 stay zero.
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: 4 * wp + 16), e = UnsafeMutablePointer<V8>.allocate(capacity: 16)
        defer { pad.deallocate(); e.deallocate() }
        pad.initialize(repeating: 0, count: 4 * wp + 16)
        for ci in channels {
            for r in rows {
                let b = r / th, ty = r % th, plane = x + (b * c + ci) * h * w
                for i in 0 ..< 4 {
                    let y = 2 * ty - 1 + i, dst = pad + i * wp + 1
                    if y >= 0 && y < h { dst.update(from: plane + y * w, count: w) } else { dst.update(repeating: 0, count: w) }
                }
                let out = v + ci * ld + (r - rows.lowerBound) * tw
                for tx0 in Swift.stride(from: 0, to: tw, by: 8) {
                    let lanes = min(8, tw - tx0)
                    // d B on each row: columns 2tx .. 2tx+3 are the evens and odds of two 16-wide loads.
                    for i in 0 ..< 4 {
                        let p = UnsafeRawPointer(pad + i * wp + 2 * tx0)
                        let a = p.loadUnaligned(as: SIMD16<Float>.self), a2 = p.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
                        let d0 = a.evenHalf, d1 = a.oddHalf, d2 = a2.evenHalf, d3 = a2.oddHalf
                        e[4 * i] = d0 - d2
                        e[4 * i + 1] = d1 + d2
                        e[4 * i + 2] = d2 - d1
                        e[4 * i + 3] = d1 - d3
                    }
                    // Bᵀ (d B) down each column.
                    let base = out + tx0, next = c * ld
                    for j in 0 ..< 4 {
                        let r0 = e[j], r1 = e[4 + j], r2 = e[8 + j], r3 = e[12 + j]
                        Winograd.store(r0 - r2, base + j * next, lanes)
                        Winograd.store(r1 + r2, base + (4 + j) * next, lanes)
                        Winograd.store(r2 - r1, base + (8 + j) * next, lanes)
                        Winograd.store(r1 - r3, base + (12 + j) * next, lanes)
                    }
                }
            }
        }
    }

    /// dx (n, C, h, w) += the adjoint of `transformInput` applied to dV: each tile's B dV Bᵀ, summed where tiles overlap.
    /// Tile rows next to each other share input rows: callers never fold neighbouring rows at the same time.
    func foldInputGradient(_ dv: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>, into dx: UnsafeMutablePointer<Float>, ld: Int) {
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: 4 * wp + 16), e = UnsafeMutablePointer<V8>.allocate(capacity: 16)
        defer { pad.deallocate(); e.deallocate() }
        for ci in channels {
            for r in rows {
                let b = r / th, ty = r % th
                pad.update(repeating: 0, count: 4 * wp)
                let src = dv + ci * ld + (r - rows.lowerBound) * tw, next = c * ld
                for tx0 in Swift.stride(from: 0, to: tw, by: 8) {
                    let lanes = min(8, tw - tx0)
                    let live = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) .< Int32(lanes)
                    let base = src + tx0
                    // B dV down each column; lanes past the row's last tile are zero (they hold the next row's tiles).
                    for j in 0 ..< 4 {
                        let v0 = Winograd.load(base + j * next, live), v1 = Winograd.load(base + (4 + j) * next, live)
                        let v2 = Winograd.load(base + (8 + j) * next, live), v3 = Winograd.load(base + (12 + j) * next, live)
                        e[j] = v0
                        e[4 + j] = v1 - v2 + v3
                        e[8 + j] = v1 + v2 - v0
                        e[12 + j] = -v3
                    }
                    // (B dV) Bᵀ on each row, added at padded columns 2tx .. 2tx + 3.
                    for i in 0 ..< 4 {
                        let f0 = e[4 * i], f1 = e[4 * i + 1], f2 = e[4 * i + 2], f3 = e[4 * i + 3]
                        let row = pad + i * wp + 2 * tx0
                        Winograd.add(Winograd.interleave(f0, f1 - f2 + f3), row)
                        Winograd.add(Winograd.interleave(f1 + f2 - f0, -f3), row + 2)
                    }
                }
                let plane = dx + (b * c + ci) * h * w
                for i in 0 ..< 4 {
                    let y = 2 * ty - 1 + i
                    guard y >= 0 && y < h else { continue }
                    let dst = plane + y * w
                    SIMDLoop.zip(dst, pad + i * wp + 1, dst, 0 ..< w, +)
                }
            }
        }
    }

    // MARK: output

    /// y (n, O, h, w) = Aᵀ M A per tile: the 2x2 outputs of every tile in tile rows `rows`, output channels `channels`.
    func transformOutput(_ m: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>, into y: UnsafeMutablePointer<Float>, ld: Int) {
        // Straight into y when a row of tiles covers whole vectors of output; otherwise through two padded rows.
        let direct = w % 16 == 0, pw = 2 * tw8
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: 2 * pw), e = UnsafeMutablePointer<V8>.allocate(capacity: 8)
        defer { pad.deallocate(); e.deallocate() }
        for oc in channels {
            for r in rows {
                let b = r / th, ty = r % th, plane = y + (b * o + oc) * h * w
                let src = m + oc * ld + (r - rows.lowerBound) * tw, next = o * ld
                let out0 = direct ? plane + 2 * ty * w : pad, out1 = direct ? plane + (2 * ty + 1) * w : pad + pw
                let second = 2 * ty + 1 < h
                for tx0 in Swift.stride(from: 0, to: tw, by: 8) {
                    let base = src + tx0
                    // Aᵀ M: two rows from the four.
                    for j in 0 ..< 4 {
                        let m0 = Winograd.load(base + j * next), m1 = Winograd.load(base + (4 + j) * next)
                        let m2 = Winograd.load(base + (8 + j) * next), m3 = Winograd.load(base + (12 + j) * next)
                        e[j] = m0 + m1 + m2
                        e[4 + j] = m1 - m2 - m3
                    }
                    Winograd.store(Winograd.interleave(e[0] + e[1] + e[2], e[1] - e[2] - e[3]), out0 + 2 * tx0)
                    if second || !direct { Winograd.store(Winograd.interleave(e[4] + e[5] + e[6], e[5] - e[6] - e[7]), out1 + 2 * tx0) }
                }
                if !direct {
                    (plane + 2 * ty * w).update(from: pad, count: w)
                    if second { (plane + (2 * ty + 1) * w).update(from: pad + pw, count: w) }
                }
            }
        }
    }

    /// dM[ξ][oc][t] = (A dY Aᵀ)[ξ] for every 2x2 tile in tile rows `rows`, output channels `channels` of dy (n, O, h, w);
    /// outside the plane dy is 0.
    func transformOutputGradient(_ dy: UnsafePointer<Float>, rows: Range<Int>, channels: Range<Int>, into dm: UnsafeMutablePointer<Float>, ld: Int) {
        let direct = w % 16 == 0, pw = 2 * tw8 + 16
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: 2 * pw), e = UnsafeMutablePointer<V8>.allocate(capacity: 8)
        defer { pad.deallocate(); e.deallocate() }
        pad.initialize(repeating: 0, count: 2 * pw)
        for oc in channels {
            for r in rows {
                let b = r / th, ty = r % th, plane = dy + (b * o + oc) * h * w
                var from: (UnsafePointer<Float>, UnsafePointer<Float>) = (plane, plane)
                for i in 0 ..< 2 {
                    let yy = 2 * ty + i, row = pad + i * pw
                    if direct && yy < h {
                        if i == 0 { from.0 = plane + yy * w } else { from.1 = plane + yy * w }
                        continue
                    }
                    if yy < h { row.update(from: plane + yy * w, count: w) } else { row.update(repeating: 0, count: w) }
                    if i == 0 { from.0 = UnsafePointer(row) } else { from.1 = UnsafePointer(row) }
                }
                let out = dm + oc * ld + (r - rows.lowerBound) * tw, next = o * ld
                for tx0 in Swift.stride(from: 0, to: tw, by: 8) {
                    let lanes = min(8, tw - tx0)
                    // A dY on each of the 2 rows: [y0, y0 + y1, y0 - y1, -y1].
                    for i in 0 ..< 2 {
                        let p = UnsafeRawPointer((i == 0 ? from.0 : from.1) + 2 * tx0).loadUnaligned(as: SIMD16<Float>.self)
                        let y0 = p.evenHalf, y1 = p.oddHalf
                        e[4 * i] = y0
                        e[4 * i + 1] = y0 + y1
                        e[4 * i + 2] = y0 - y1
                        e[4 * i + 3] = -y1
                    }
                    let base = out + tx0
                    for j in 0 ..< 4 {
                        let a0 = e[j], a1 = e[4 + j]
                        Winograd.store(a0, base + j * next, lanes)
                        Winograd.store(a0 + a1, base + (4 + j) * next, lanes)
                        Winograd.store(a0 - a1, base + (8 + j) * next, lanes)
                        Winograd.store(-a1, base + (12 + j) * next, lanes)
                    }
                }
            }
        }
    }

    // MARK: products

    /// U_ξ (O x C) for each position ξ, or U_ξᵀ (C x O), prepared for the products of every block (in bf16 packed once).
    func packed(_ u: UnsafePointer<Float>, transposed: Bool) -> [PackedOperand] {
        if precision == .fp32 {
            return (0 ..< 16).map { PackedOperand(transA: transposed, m: transposed ? c : o, k: transposed ? o : c, a: u + $0 * o * c, lda: c, precision: .fp32) }
        }
        // One slot per position, filled on the workers (each writes its own).
        final class Slot { var operand: PackedOperand? }
        let slots = (0 ..< 16).map { _ in Slot() }
        Parallel.forRange(16) { r in
            for xi in r {
                slots[xi].operand = PackedOperand(transA: transposed, m: transposed ? c : o, k: transposed ? o : c, a: u + xi * o * c,
                                                  lda: c, precision: precision, parallel: false)
            }
        }
        return slots.map { $0.operand! }
    }

    /// M_ξ (O x tiles) = U_ξ V_ξ for the positions ξ in `positions`, each a single-threaded GEMM.
    func multiply(_ us: [PackedOperand], _ v: UnsafePointer<Float>, into m: UnsafeMutablePointer<Float>, tiles: Int, ld: Int, positions: Range<Int>) {
        for xi in positions {
            BLAS.gemm(us[xi], n: tiles, b: v + xi * c * ld, ldb: ld, c: m + xi * o * ld, ldc: ld, split: false)
        }
    }

    /// dU_ξ += dM_ξ V_ξᵀ, then (with `inputGradient`) dV_ξ = U_ξᵀ dM_ξ written over V_ξ (V is not needed after its
    /// dU). Only the first `tiles` columns of a block's buffers hold tiles (a call's last block may be shorter).
    func multiplyBackward(_ uts: [PackedOperand]?, _ dm: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>,
                          accumulating du: UnsafeMutablePointer<Float>, tiles: Int, ld: Int, positions: Range<Int>, inputGradient: Bool) {
        for xi in positions {
            let vx = v + xi * c * ld, dmx = dm + xi * o * ld
            BLAS.gemm(transB: true, m: o, n: c, k: tiles, a: dmx, lda: ld, b: vx, ldb: ld, beta: 1, c: du + xi * o * c, ldc: c, split: false,
                      precision: precision)
            guard inputGradient, let uts else { continue }
            BLAS.gemm(uts[xi], n: tiles, b: dmx, ldb: ld, c: vx, ldc: ld, split: false)
        }
    }

    // MARK: vectors

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

    /// Loads 8 lanes, zero where `live` is false.
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
