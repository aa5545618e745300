import Foundation

/// 2-D convolution over NCHW with any kernel, stride, padding, dilation and groups (PyTorch's Conv2d).
///
/// Small outputs: the input is unrolled (im2col) for all images of the batch at once, so each group is one
/// GEMM of (out/groups) x (in/groups * kh * kw) by (in/groups * kh * kw) x (N * Hout * Wout), then scattered
/// back to NCHW. Outputs of 256 positions or more: one GEMM per image (in bands of rows) straight into NCHW, whole
/// images per worker; pointwise (1x1, stride 1) convolutions multiply the input in place, without unrolling.
/// Depthwise convolutions (groups == in channels) use direct kernels instead (vectorised for 3x3, padding 1, stride 1
/// or 2: `Depthwise3x3`), as unrolling one channel at a time would be mostly copying. 3x3 convolutions with stride 1
/// and padding 1 (most of a ResNet's work) use Winograd's F(2x2, 3x3) algorithm on planes of 16 x 16 or more, which
/// needs 2.25x fewer multiplications (`Winograd`). In bf16 (autocast) runs, ungrouped convolutions with kernels of 3
/// or more on 8 or more channels run on oneDNN's direct bfloat16 kernels where the library is installed (`OneDNN`),
/// and on the paths above otherwise.
public final class Conv2d: Layer {
    public let inChannels: Int, outChannels: Int
    public let kernel: (h: Int, w: Int), stride: Int, padding: Int, dilation: Int, groups: Int
    public let hasBias: Bool
    unowned let store: ParameterStore
    /// Offsets of weight (out, in/groups, kh, kw) and bias (out) in the store.
    let weight: Int, bias: Int
    private var input: Tensor?
    /// The input in oneDNN's bfloat16 layout, from a bf16 forward on oneDNN, for the weight gradient.
    private var inputBlocked: Tensor?
    /// Most floats the per-image path unrolls at once: larger outputs are done in bands of rows, so memory stays
    /// bounded whatever the image size (the PatchGD head on a 256 x 256 latent grid would otherwise unroll 600 MiB).
    public var unrollLimit = 1 << 22
    /// Whether backward computes the input gradient. A network's first layer sees images, which need none: without
    /// it, backward returns zeros and skips a product as large as the weight gradient's (and its fold back to NCHW).
    /// Depthwise convolutions always compute it.
    public var computesInputGradient = true
    /// When a 3x3 stride-1 convolution uses Winograd's algorithm (tests force either path).
    public var winograd = WinogradUse.whenFaster
    /// Most floats of transformed input (or output) the Winograd path holds at once when it spreads one block of tiles
    /// over the cores (its cache-sized blocks are far below it); larger inputs are done in several blocks.
    public var winogradLimit = 1 << 23
    /// Tiles per cache-sized block of the Winograd path: its transformed input and output take 16 (in + out) floats per
    /// tile, 1 MiB at 64 channels (`gigapatch-bench conv` measured 64, 128 and 256 within noise of each other).
    public var winogradBlockTiles = 128
    /// Whether depthwise 3x3 convolutions with padding 1 and stride 1 or 2 (MobileNet's) use the vectorised
    /// `Depthwise3x3` kernels; tests compare them with the general depthwise loops.
    public var fastDepthwise = true
    /// Whether bf16 runs use oneDNN's direct convolutions where they are available (`OneDNN`) and measured faster
    /// (kernels of 3 or more, 8 or more input channels, one group); tests turn it off to compare with the own kernels.
    public var oneDNN = true
    /// Whether Gigapatch converts this layer's input and output gradient to oneDNN's bfloat16 layout itself (once for
    /// both passes, with its own kernel) instead of leaving it to oneDNN's reorders; the same floats either way.
    public var convertsForOneDNN = true
    /// oneDNN's primitives for the input shapes (n, h, w, input gradient) seen lately: a few, as PatchGD's fill and
    /// recompute passes use different batches.
    private var oneDNNConvolutions: [[Int]: OneDNNConvolution] = [:]
    private var oneDNNFailed = false
    /// The kernel oneDNN chose for this convolution (for one of its recent input shapes; e.g.
    /// "jit_bf16:avx512_core_bf16"); nil when it has not run on oneDNN.
    public var oneDNNImplementation: String? { oneDNNConvolutions.values.first?.implementation }

    /// - Parameters:
    ///   - name: state_dict prefix, e.g. "layer1.0.conv1" (declares "<name>.weight" and "<name>.bias").
    ///   - initializer: weight initializer; default PyTorch's kaiming-uniform(a = sqrt 5), i.e. uniform(1/sqrt(fan_in)).
    public init(_ store: ParameterStore, _ name: String, in inChannels: Int, out outChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, dilation: Int = 1, groups: Int = 1, bias: Bool = true, initializer: Initializer? = nil) {
        precondition(inChannels % groups == 0 && outChannels % groups == 0, "\(name): channels must divide by groups")
        self.store = store
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = (kernel, kernel)
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        hasBias = bias
        let fanIn = Float(inChannels / groups * kernel * kernel)
        weight = store.declare("\(name).weight", shape: [outChannels, inChannels / groups, kernel, kernel],
                               initializer: initializer ?? .uniform(bound: 1 / fanIn.squareRoot()))
        self.bias = bias ? store.declare("\(name).bias", shape: [outChannels], initializer: .uniform(bound: 1 / fanIn.squareRoot())) : -1
    }

    /// The convolution `other` with another stride: the same weights and bias (the same offsets in the same store),
    /// so gradients of either accumulate into one set of parameters. `AdaptiveStrideConv2d` holds both faces.
    public init(sharing other: Conv2d, stride: Int) {
        store = other.store
        inChannels = other.inChannels
        outChannels = other.outChannels
        kernel = other.kernel
        self.stride = stride
        padding = other.padding
        dilation = other.dilation
        groups = other.groups
        hasBias = other.hasBias
        weight = other.weight
        bias = other.bias
    }

    /// Output spatial size for an input of `h` x `w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        ((h + 2 * padding - dilation * (kernel.h - 1) - 1) / stride + 1, (w + 2 * padding - dilation * (kernel.w - 1) - 1) / stride + 1)
    }

    var isDepthwise: Bool { groups == inChannels && groups > 1 }

    /// 1x1, stride 1, no padding, one group: the unrolled input is the input itself.
    var isPointwise: Bool { kernel == (1, 1) && stride == 1 && padding == 0 && groups == 1 }

    /// From this many output positions per image, ungrouped convolutions run one GEMM per image directly on NCHW
    /// (no reshuffle); below it the whole batch is one GEMM, which keeps small deep layers efficient.
    static let perImageThreshold = 256

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor { forward(x, ctx, then: nil) }

    /// The convolution, then `epilogue` (a BatchNorm in inference, `Sequential`) on its output: applied to each block
    /// of output while it is in cache where the path allows (depthwise 3x3 planes, per-image bands), else in one pass.
    public func forward(_ x: Tensor, _ ctx: Context, then epilogue: BatchNorm2d.Epilogue?) -> Tensor {
        let (n, c, h, w) = x.nchw
        // Blocks are fused only before the bias is added (convolutions with a bias get the epilogue after it).
        let fused = hasBias ? nil : epilogue
        var applied = false
        precondition(c == inChannels, "conv expects \(inChannels) input channels, got \(c)")
        let (ho, wo) = outputSize(h: h, w: w)
        let y = Tensor(uninitialized: [n, outChannels, ho, wo])
        inputBlocked = nil
        if ctx.precision == .bf16, let dnnl = oneDNNConvolution(n: n, h: h, w: w) {
            // x converted once, kept for the weight gradient instead of being converted again in backward.
            let blocked = dnnl.blockedInput && convertsForOneDNN ? OneDNN.blocked16(x) : nil
            dnnl.forward(x.pointer, blocked: blocked?.pointer, weights: store.value(weight), into: y.pointer)
            if ctx.recordForBackward { inputBlocked = blocked }
        } else if isDepthwise {
            if usesDepthwise3x3 { depthwise3x3Forward(x, y, then: fused); applied = fused != nil } else { depthwiseForward(x, y) }
        } else if usesWinograd(h: h, w: w) {
            let winogradConv = Winograd(n: n, c: c, o: outChannels, h: h, w: w, blockTiles: winogradBlockTiles, precision: ctx.precision)
            winogradConv.forward(x.pointer, weights: store.value(weight), into: y.pointer, limit: winogradLimit)
        } else if groups == 1 && ho * wo >= Conv2d.perImageThreshold {
            // Large spatial size: one GEMM per image (per band of output rows) straight into its NCHW block, no reshuffle.
            // With enough images each worker takes whole images (its unrolled input stays in its own cache);
            // otherwise every image is spread over the workers. A pointwise (1x1, stride 1) convolution's unrolled
            // input is the image itself: its GEMM reads the NCHW block in place.
            let one = Geometry(conv: self, n: 1, h: h, w: w, ho: ho, wo: wo), k = one.k, p = ho * wo, pointwise = isPointwise
            let band = one.bandRows(limit: unrollLimit), workers = n >= 2 * Parallel.threads ? Parallel.threads : 1
            let cols = (0 ..< workers).map { _ in Tensor(uninitialized: pointwise ? [1] : [k, band * wo]) }
            let weights = PackedOperand(m: outChannels, k: k, a: store.value(weight), lda: k, precision: ctx.precision)
            Parallel.forWorkers(n, workers: workers) { worker, images in
                let col = cols[worker].pointer
                for b in images {
                    for r0 in Swift.stride(from: 0, to: ho, by: band) {
                        let r1 = min(ho, r0 + band), pb = (r1 - r0) * wo
                        let image = x.pointer + b * c * h * w
                        if !pointwise { one.im2col(image, rows: r0 ..< r1, into: col, parallel: workers == 1) }
                        BLAS.gemm(weights, n: pb, b: pointwise ? image + r0 * wo : col, ldb: pointwise ? p : pb,
                                  c: y.pointer + b * outChannels * p + r0 * wo, ldc: p, split: workers == 1)
                        guard let fused else { continue }
                        // The band's outputs are still in cache: the epilogue now (over the cores when this image is).
                        let band = y.pointer + b * outChannels * p + r0 * wo, o = outChannels
                        if workers == 1 {
                            Parallel.forRange(o, grain: 8) { r in for oc in r { fused.apply(band + oc * p, count: pb, channel: oc) } }
                        } else {
                            for oc in 0 ..< o { fused.apply(band + oc * p, count: pb, channel: oc) }
                        }
                    }
                }
            }
            applied = fused != nil
        } else {
            let geometry = Geometry(conv: self, n: n, h: h, w: w, ho: ho, wo: wo)
            let og = outChannels / groups, k = geometry.k, np = n * ho * wo
            let col = Tensor(uninitialized: [k, np])
            let direct = n == 1 && groups == 1
            let yg = direct ? y : Tensor(uninitialized: [og, np])
            for g in 0 ..< groups {
                geometry.im2col(x.pointer, group: g, into: col.pointer)
                let weights = PackedOperand(m: og, k: k, a: store.value(weight + g * og * k), lda: k, precision: ctx.precision)
                BLAS.gemm(weights, n: np, b: col.pointer, ldb: np, c: yg.pointer, ldc: np)
                if !direct { geometry.scatter(yg.pointer, into: y.pointer, group: g, channels: og, total: outChannels) }
            }
        }
        if hasBias { addBias(y) }
        if let epilogue, !applied { epilogue.apply(y) }
        input = ctx.recordForBackward ? x : nil
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward without a recorded forward") }
        let (n, _, h, w) = x.nchw
        let (_, o, ho, wo) = dy.nchw
        if hasBias {
            // dbias[o] += sum over n, p of dy
            let db = store.gradient(bias), pdy = dy.pointer, p = ho * wo
            Parallel.forRange(o, grain: 8) { r in
                for oc in r {
                    var s: Float = 0
                    for b in 0 ..< n { let base = pdy + (b * o + oc) * p; for i in 0 ..< p { s += base[i] } }
                    db[oc] += s
                }
            }
        }
        let dnnl = ctx.precision == .bf16 ? oneDNNConvolution(n: n, h: h, w: w) : nil
        // oneDNN overwrites dx; the other paths add into it.
        let dx = dnnl != nil && computesInputGradient ? Tensor(uninitialized: x.shape) : Tensor(shape: x.shape)
        if let dnnl {
            let dyBlocked = dnnl.blockedOutputGradient && convertsForOneDNN ? OneDNN.blocked16(dy) : nil
            dnnl.backward(x.pointer, xBlocked: dnnl.blockedInput ? inputBlocked?.pointer : nil, dy.pointer, dyBlocked: dyBlocked?.pointer,
                          weights: store.value(weight), dx: computesInputGradient ? dx.pointer : nil, dw: store.gradient(weight))
        } else if isDepthwise {
            if usesDepthwise3x3 { depthwise3x3Backward(x, dy, dx) } else { depthwiseBackward(x, dy, dx) }
        } else if usesWinograd(h: h, w: w) {
            let winogradConv = Winograd(n: n, c: inChannels, o: o, h: h, w: w, blockTiles: winogradBlockTiles, precision: ctx.precision)
            winogradConv.backward(x.pointer, dy.pointer, weights: store.value(weight), dx: computesInputGradient ? dx.pointer : nil,
                                  dw: store.gradient(weight), limit: winogradLimit)
        } else if groups == 1 && ho * wo >= Conv2d.perImageThreshold {
            // As in forward: whole images per worker when there are enough, each worker summing its own weight
            // gradient; the sums are added in worker order, so a run repeats bit for bit.
            let one = Geometry(conv: self, n: 1, h: h, w: w, ho: ho, wo: wo), k = one.k, p = ho * wo, pointwise = isPointwise
            let band = one.bandRows(limit: unrollLimit), workers = n >= 2 * Parallel.threads ? Parallel.threads : 1
            let unrolled: [Int] = pointwise ? [1] : [k, band * wo]
            let buffers = (0 ..< workers).map { _ in (col: Tensor(uninitialized: unrolled), dcol: Tensor(uninitialized: unrolled),
                                                      dw: workers > 1 ? Tensor(shape: [o * k]) : nil) }
            let inputGradient = computesInputGradient
            let weightsT = inputGradient ? PackedOperand(transA: true, m: k, k: o, a: store.value(weight), lda: k, precision: ctx.precision) : nil
            Parallel.forWorkers(n, workers: workers) { worker, images in
                let col = buffers[worker].col.pointer, dcol = buffers[worker].dcol.pointer
                let dw = buffers[worker].dw?.pointer ?? store.gradient(weight)
                for b in images {
                    for r0 in Swift.stride(from: 0, to: ho, by: band) {
                        let r1 = min(ho, r0 + band), pb = (r1 - r0) * wo
                        let dyb = dy.pointer + b * o * p + r0 * wo
                        let image = x.pointer + b * inChannels * h * w, dimage = dx.pointer + b * inChannels * h * w
                        if !pointwise { one.im2col(image, rows: r0 ..< r1, into: col, parallel: workers == 1) }
                        BLAS.gemm(transB: true, m: o, n: k, k: pb, a: dyb, lda: p, b: pointwise ? image + r0 * wo : col, ldb: pointwise ? p : pb,
                                  beta: 1, c: dw, ldc: k, split: workers == 1, precision: ctx.precision)
                        guard let weightsT else { continue }
                        // Pointwise: the band's input gradient is written straight into dx (bands are disjoint columns).
                        BLAS.gemm(weightsT, n: pb, b: dyb, ldb: p, c: pointwise ? dimage + r0 * wo : dcol, ldc: pointwise ? p : pb,
                                  split: workers == 1)
                        if !pointwise { one.col2im(dcol, rows: r0 ..< r1, into: dimage, parallel: workers == 1) }
                    }
                }
            }
            for buffer in buffers { if let dw = buffer.dw { SIMDLoop.zip(store.gradient(weight), dw.pointer, store.gradient(weight), 0 ..< o * k, +) } }
        } else {
            let geometry = Geometry(conv: self, n: n, h: h, w: w, ho: ho, wo: wo)
            let og = outChannels / groups, k = geometry.k, np = n * ho * wo
            let col = Tensor(uninitialized: [k, np])
            let dcol = Tensor(uninitialized: [k, np])
            let direct = n == 1 && groups == 1
            let dyg = direct ? dy : Tensor(uninitialized: [og, np])
            for g in 0 ..< groups {
                if !direct { geometry.gather(dy.pointer, into: dyg.pointer, group: g, channels: og, total: outChannels) }
                geometry.im2col(x.pointer, group: g, into: col.pointer)
                // dW_g (og x k) += dY_g (og x np) * col^T (np x k)
                BLAS.gemm(transB: true, m: og, n: k, k: np, a: dyg.pointer, lda: np, b: col.pointer, ldb: np,
                          beta: 1, c: store.gradient(weight + g * og * k), ldc: k, precision: ctx.precision)
                guard computesInputGradient else { continue }
                // dcol (k x np) = W_g^T (k x og) * dY_g (og x np)
                let weightsT = PackedOperand(transA: true, m: k, k: og, a: store.value(weight + g * og * k), lda: k, precision: ctx.precision)
                BLAS.gemm(weightsT, n: np, b: dyg.pointer, ldb: np, c: dcol.pointer, ldc: np)
                geometry.col2im(dcol.pointer, group: g, into: dx.pointer)
            }
        }
        input = nil
        inputBlocked = nil
        return dx
    }

    /// oneDNN's convolution for an input of n x h x w, made on first use; nil where oneDNN does not run it (turned
    /// off, unavailable, grouped, 1x1, on fewer than 8 channels, or its primitives could not be made: said once, then
    /// the own kernels run).
    private func oneDNNConvolution(n: Int, h: Int, w: Int) -> OneDNNConvolution? {
        // Kernels of 3 or more on 8 or more input channels: there oneDNN measured faster. A 1x1 convolution, or a first
        // layer on RGB, is little compute around two conversions of its tensors (NCHW float32 to oneDNN's blocked
        // bfloat16 and back), and the own kernels, which need none, were faster (BENCHMARKS.md).
        guard oneDNN, groups == 1, kernel.h >= 3, inChannels >= 8, !oneDNNFailed, OneDNN.isAvailable else { return nil }
        let key = [n, h, w, computesInputGradient ? 1 : 0]
        if let conv = oneDNNConvolutions[key] { return conv }
        do {
            let conv = try OneDNNConvolution(self, n: n, h: h, w: w, inputGradient: computesInputGradient)
            if oneDNNConvolutions.count >= 4 { oneDNNConvolutions.removeAll() }
            oneDNNConvolutions[key] = conv
            return conv
        } catch {
            oneDNNFailed = true
            FileHandle.standardError.write(Data("note: \(error); this convolution runs on Gigapatch's own bf16 kernels\n".utf8))
            return nil
        }
    }

    private func addBias(_ y: Tensor) {
        let (n, o, h, w) = y.nchw
        let p = h * w, py = y.pointer, pb = store.value(bias)
        Parallel.forRange(n * o, grain: 16) { r in
            for i in r {
                let b = pb[i % o], base = py + i * p
                for j in 0 ..< p { base[j] += b }
            }
        }
    }

    // MARK: Winograd

    /// When a convolution that can run as Winograd's F(2x2, 3x3) does.
    public enum WinogradUse: Sendable {
        /// Never: always unrolled (im2col + GEMM).
        case never
        /// On planes of at least 16 x 16, where it measured faster (`gigapatch-bench conv`, BENCHMARKS.md); on smaller
        /// planes, deep layers' few tiles make its transforms cost more than the products they save.
        case whenFaster
        /// Whenever it applies.
        case always
    }

    /// Whether this convolution runs as Winograd's F(2x2, 3x3) on an h x w input.
    public func usesWinograd(h: Int, w: Int) -> Bool {
        guard Winograd.applies(self) else { return false }
        switch winograd {
        case .never: return false
        case .whenFaster: return h >= 16 && w >= 16
        case .always: return true
        }
    }

    // MARK: depthwise

    /// The range of output columns whose input column `ox * stride - padding + offset` lies in `0 ..< w`.
    @inline(__always)
    static func validRange(offset: Int, stride s: Int, padding p: Int, inSize w: Int, outSize wo: Int) -> Range<Int> {
        // ox * s - p + offset >= 0  and  ox * s - p + offset <= w - 1
        let first = p - offset > 0 ? (p - offset + s - 1) / s : 0
        let last = w - 1 + p - offset >= 0 ? (w - 1 + p - offset) / s : -1
        return min(first, wo) ..< max(min(first, wo), min(wo, last + 1))
    }

    /// Whether this depthwise convolution runs on `Depthwise3x3`.
    public var usesDepthwise3x3: Bool {
        fastDepthwise && isDepthwise && kernel == (3, 3) && padding == 1 && dilation == 1 && (stride == 1 || stride == 2)
    }

    private func depthwise3x3Forward(_ x: Tensor, _ y: Tensor, then epilogue: BatchNorm2d.Epilogue?) {
        let (n, c, h, w) = x.nchw
        let o = outChannels, m = o / c, hw = h * w
        let g = Depthwise3x3.Plane(h: h, w: w, stride: stride), p = g.ho * g.wo
        let px = x.pointer, py = y.pointer, pw = store.value(weight)
        Parallel.forRange(n * o, grain: 4) { r in
            let s = g.allocate()
            defer { s.deallocate() }
            for i in r {
                let b = i / o, oc = i % o
                g.load(px + (b * c + oc / m) * hw, into: s)
                Depthwise3x3.forward(s, Depthwise3x3.Taps(pw + oc * 9), g, into: py + i * p)
                epilogue?.apply(py + i * p, count: p, channel: oc)
            }
        }
    }

    private func depthwise3x3Backward(_ x: Tensor, _ dy: Tensor, _ dx: Tensor) {
        let (n, c, h, w) = x.nchw
        let o = outChannels, m = o / c, hw = h * w
        let g = Depthwise3x3.Plane(h: h, w: w, stride: stride), gdy = Depthwise3x3.Plane(h: g.ho, w: g.wo, stride: 1), p = g.ho * g.wo
        let px = x.pointer, pdy = dy.pointer, pdx = dx.pointer, pw = store.value(weight), pdw = store.gradient(weight)
        // Parallel over input channels, as the general loops: each owns its output channels' weight gradients and its dx planes.
        Parallel.forRange(c, grain: 2) { r in
            let xs = g.allocate(), dys = gdy.allocate(), acc = g.allocate()
            defer { xs.deallocate(); dys.deallocate(); acc.deallocate() }
            for ic in r {
                for b in 0 ..< n {
                    g.load(px + (b * c + ic) * hw, into: xs)
                    for oc in ic * m ..< (ic + 1) * m {
                        gdy.load(pdy + (b * o + oc) * p, into: dys)
                        Depthwise3x3.backward(xs, dys, g, kernel: Depthwise3x3.Taps(pw + oc * 9), flipped: Depthwise3x3.Taps(pw + oc * 9, flipped: true),
                                              dk: pdw + oc * 9, dx: pdx + (b * c + ic) * hw, acc: acc)
                    }
                }
            }
        }
    }

    private func depthwiseForward(_ x: Tensor, _ y: Tensor) {
        let (n, c, h, w) = x.nchw
        let (_, o, ho, wo) = y.nchw
        let m = o / c, (kh, kw) = kernel, s = stride, p = padding, d = dilation
        let px = x.pointer, py = y.pointer, pw = store.value(weight)
        Parallel.forRange(n * o, grain: 4) { r in
            for i in r {
                let b = i / o, oc = i % o, ic = oc / m
                let src = px + (b * c + ic) * h * w, dst = py + i * ho * wo, k = pw + oc * kh * kw
                dst.update(repeating: 0, count: ho * wo)
                for ki in 0 ..< kh {
                    let rows = Conv2d.validRange(offset: ki * d, stride: s, padding: p, inSize: h, outSize: ho)
                    for kj in 0 ..< kw {
                        let cols = Conv2d.validRange(offset: kj * d, stride: s, padding: p, inSize: w, outSize: wo)
                        let wv = k[ki * kw + kj]
                        for oy in rows {
                            let srow = src + (oy * s - p + ki * d) * w - p + kj * d, drow = dst + oy * wo
                            for ox in cols { drow[ox] += wv * srow[ox * s] }
                        }
                    }
                }
            }
        }
    }

    private func depthwiseBackward(_ x: Tensor, _ dy: Tensor, _ dx: Tensor) {
        let (n, c, h, w) = x.nchw
        let (_, o, ho, wo) = dy.nchw
        let m = o / c, (kh, kw) = kernel, s = stride, p = padding, d = dilation
        let px = x.pointer, pdy = dy.pointer, pdx = dx.pointer, pw = store.value(weight), pdw = store.gradient(weight)
        // Parallel over input channels: each owns its output channels' weight gradients and its dx plane.
        Parallel.forRange(c, grain: 2) { r in
            for ic in r {
                for oc in ic * m ..< (ic + 1) * m {
                    let k = pw + oc * kh * kw, dk = pdw + oc * kh * kw
                    for b in 0 ..< n {
                        let src = px + (b * c + ic) * h * w, dsrc = pdx + (b * c + ic) * h * w, g = pdy + (b * o + oc) * ho * wo
                        for ki in 0 ..< kh {
                            let rows = Conv2d.validRange(offset: ki * d, stride: s, padding: p, inSize: h, outSize: ho)
                            for kj in 0 ..< kw {
                                let cols = Conv2d.validRange(offset: kj * d, stride: s, padding: p, inSize: w, outSize: wo)
                                let wv = k[ki * kw + kj]
                                var acc: Float = 0
                                for oy in rows {
                                    let off = (oy * s - p + ki * d) * w - p + kj * d
                                    let srow = src + off, drow = dsrc + off, grow = g + oy * wo
                                    for ox in cols {
                                        acc += grow[ox] * srow[ox * s]
                                        drow[ox * s] += wv * grow[ox]
                                    }
                                }
                                dk[ki * kw + kj] += acc
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Index arithmetic of one convolution call: im2col / col2im and the NCHW <-> (channels x N*P) reshuffles.
struct Geometry {
    let n: Int, c: Int, h: Int, w: Int, ho: Int, wo: Int
    let kh: Int, kw: Int, stride: Int, padding: Int, dilation: Int, cg: Int
    var k: Int { cg * kh * kw }
    var p: Int { ho * wo }

    init(conv: Conv2d, n: Int, h: Int, w: Int, ho: Int, wo: Int) {
        self.n = n
        c = conv.inChannels
        self.h = h
        self.w = w
        self.ho = ho
        self.wo = wo
        (kh, kw) = conv.kernel
        stride = conv.stride
        padding = conv.padding
        dilation = conv.dilation
        cg = conv.inChannels / conv.groups
    }

    /// `Parallel.forRange`, or the whole range on the calling thread.
    @inline(__always)
    static func forRange(_ count: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
        if parallel { Parallel.forRange(count, grain: grain, body) } else { body(0 ..< count) }
    }

    /// Output rows per band of the per-image path, so its unrolled input stays within `limit` floats.
    func bandRows(limit: Int) -> Int { max(1, min(ho, limit / max(1, k * wo))) }

    /// col (k x (r1-r0)*wo) for output rows r0 ..< r1 of a single image (n == 1, one group).
    /// - Parameter parallel: false inside a worker that already has its own image.
    func im2col(_ x: UnsafeMutablePointer<Float>, rows band: Range<Int>, into col: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let pb = band.count * wo
        Geometry.forRange(k, grain: 4, parallel: parallel) { r in
            for row in r {
                let ci = row / (kh * kw), ki = row / kw % kh, kj = row % kw
                let valid = Conv2d.validRange(offset: ki * dilation, stride: stride, padding: padding, inSize: h, outSize: ho)
                let rows = max(valid.lowerBound, band.lowerBound) ..< max(max(valid.lowerBound, band.lowerBound), min(valid.upperBound, band.upperBound))
                let cols = Conv2d.validRange(offset: kj * dilation, stride: stride, padding: padding, inSize: w, outSize: wo)
                let out = col + row * pb, src = x + ci * h * w
                if rows.count < band.count || cols.count < wo { out.update(repeating: 0, count: pb) }
                for oy in rows {
                    let srow = src + (oy * stride - padding + ki * dilation) * w - padding + kj * dilation, drow = out + (oy - band.lowerBound) * wo
                    if stride == 1 {
                        (drow + cols.lowerBound).update(from: srow + cols.lowerBound, count: cols.count)
                    } else if stride == 2 {
                        Geometry.gatherEven(srow + 2 * cols.lowerBound, into: drow + cols.lowerBound, count: cols.count)
                    } else {
                        for ox in cols { drow[ox] = srow[ox * stride] }
                    }
                }
            }
        }
    }

    /// dx += the band's dcol (k x (r1-r0)*wo) folded back (single image, one group; parallel over channels).
    /// - Parameter parallel: false inside a worker that already has its own image.
    func col2im(_ dcol: UnsafeMutablePointer<Float>, rows band: Range<Int>, into dx: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let pb = band.count * wo
        Geometry.forRange(cg, grain: 1, parallel: parallel) { r in
            for ci in r {
                let plane = dx + ci * h * w
                for ki in 0 ..< kh {
                    let valid = Conv2d.validRange(offset: ki * dilation, stride: stride, padding: padding, inSize: h, outSize: ho)
                    let lo = max(valid.lowerBound, band.lowerBound), rows = lo ..< max(lo, min(valid.upperBound, band.upperBound))
                    for kj in 0 ..< kw {
                        let cols = Conv2d.validRange(offset: kj * dilation, stride: stride, padding: padding, inSize: w, outSize: wo)
                        let src = dcol + ((ci * kh + ki) * kw + kj) * pb
                        for oy in rows {
                            let drow = plane + (oy * stride - padding + ki * dilation) * w - padding + kj * dilation
                            let srow = src + (oy - band.lowerBound) * wo
                            if stride == 1 {
                                for ox in cols { drow[ox] += srow[ox] }
                            } else if stride == 2 {
                                Geometry.scatterAddEven(srow + cols.lowerBound, into: drow + 2 * cols.lowerBound, count: cols.count)
                            } else {
                                for ox in cols { drow[ox * stride] += srow[ox] }
                            }
                        }
                    }
                }
            }
        }
    }

    /// col (k x n*p): row (ci, ki, kj), column (b, oy, ox) holds x[b, g*cg + ci, oy*s - pad + ki*d, ox*s - pad + kj*d] or 0.
    func im2col(_ x: UnsafeMutablePointer<Float>, group g: Int, into col: UnsafeMutablePointer<Float>) {
        let np = n * p
        Parallel.forRange(k, grain: 4) { r in
            for row in r {
                let ci = row / (kh * kw), ki = row / kw % kh, kj = row % kw
                let rows = Conv2d.validRange(offset: ki * dilation, stride: stride, padding: padding, inSize: h, outSize: ho)
                let cols = Conv2d.validRange(offset: kj * dilation, stride: stride, padding: padding, inSize: w, outSize: wo)
                let dst = col + row * np
                for b in 0 ..< n {
                    let src = x + (b * c + g * cg + ci) * h * w, out = dst + b * p
                    if rows.count < ho || cols.count < wo { out.update(repeating: 0, count: p) }
                    for oy in rows {
                        let srow = src + (oy * stride - padding + ki * dilation) * w - padding + kj * dilation, drow = out + oy * wo
                        if stride == 1 {
                            (drow + cols.lowerBound).update(from: srow + cols.lowerBound, count: cols.count)
                        } else if stride == 2 {
                            Geometry.gatherEven(srow + 2 * cols.lowerBound, into: drow + cols.lowerBound, count: cols.count)
                        } else {
                            for ox in cols { drow[ox] = srow[ox * stride] }
                        }
                    }
                }
            }
        }
    }

    /// dx[b, g*cg + ci, ...] += dcol rows of channel ci (parallel over channels: no two threads share a plane).
    func col2im(_ dcol: UnsafeMutablePointer<Float>, group g: Int, into dx: UnsafeMutablePointer<Float>) {
        let np = n * p
        Parallel.forRange(cg, grain: 1) { r in
            for ci in r {
                for ki in 0 ..< kh {
                    let rows = Conv2d.validRange(offset: ki * dilation, stride: stride, padding: padding, inSize: h, outSize: ho)
                    for kj in 0 ..< kw {
                        let cols = Conv2d.validRange(offset: kj * dilation, stride: stride, padding: padding, inSize: w, outSize: wo)
                        let src = dcol + ((ci * kh + ki) * kw + kj) * np
                        for b in 0 ..< n {
                            let plane = dx + (b * c + g * cg + ci) * h * w, s = src + b * p
                            for oy in rows {
                                let drow = plane + (oy * stride - padding + ki * dilation) * w - padding + kj * dilation, srow = s + oy * wo
                                if stride == 1 {
                                    for ox in cols { drow[ox] += srow[ox] }
                                } else if stride == 2 {
                                    Geometry.scatterAddEven(srow + cols.lowerBound, into: drow + 2 * cols.lowerBound, count: cols.count)
                                } else {
                                    for ox in cols { drow[ox * stride] += srow[ox] }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// dst[i] = src[2 i] for i in 0 ..< count (stride-2 unrolling): the even half of 16-wide loads. A load reads up to
    /// src[2 i + 15], so vectors stop where that would pass src[2 (count - 1)], the last element the row owns.
    @inline(__always)
    static func gatherEven(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 9 <= count {
            SIMDLoop.store(UnsafeRawPointer(src + 2 * i).loadUnaligned(as: SIMD16<Float>.self).evenHalf, dst + i)
            i += 8
        }
        while i < count { dst[i] = src[2 * i]; i += 1 }
    }

    /// dst[2 i] += src[i] for i in 0 ..< count (stride-2 folding); the odd elements between are rewritten unchanged,
    /// so no other thread may write this row meanwhile (col2im gives each thread its own channels).
    @inline(__always)
    static func scatterAddEven(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 9 <= count {
            let v = SIMDLoop.load(src + i), p = UnsafeMutableRawPointer(dst + 2 * i)
            var add = SIMD16<Float>()
            add.evenHalf = v
            p.storeBytes(of: p.loadUnaligned(as: SIMD16<Float>.self) + add, as: SIMD16<Float>.self)
            i += 8
        }
        while i < count { dst[2 * i] += src[i]; i += 1 }
    }

    /// y[b, g*og + o, :] = yg[o, b*p ..< (b+1)*p].
    func scatter(_ yg: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, group g: Int, channels og: Int, total o: Int) {
        let np = n * p
        Parallel.forRange(og * n, grain: 8) { r in
            for i in r {
                let oc = i / n, b = i % n
                (y + (b * o + g * og + oc) * p).update(from: yg + oc * np + b * p, count: p)
            }
        }
    }

    /// The inverse of `scatter`: dyg[o, b*p ..< (b+1)*p] = dy[b, g*og + o, :].
    func gather(_ dy: UnsafeMutablePointer<Float>, into dyg: UnsafeMutablePointer<Float>, group g: Int, channels og: Int, total o: Int) {
        let np = n * p
        Parallel.forRange(og * n, grain: 8) { r in
            for i in r {
                let oc = i / n, b = i % n
                (dyg + oc * np + b * p).update(from: dy + (b * o + g * og + oc) * p, count: p)
            }
        }
    }
}

/// A strided convolution that strides only while its input is large enough: with `strided` when the smaller input
/// side is at least `minimumSide`, else with stride 1 and the same weights. The PatchGD head uses it so that a small
/// latent grid (4 x 4) keeps 2 x 2 maps instead of being reduced to 1 x 1, where a 3x3 kernel uses only its centre
/// tap and BatchNorm sees one value per image; on a 16 x 16 grid every block strides, as the reference head does.
public final class AdaptiveStrideConv2d: Layer {
    public let strided: Conv2d
    public let unstrided: Conv2d
    public let minimumSide: Int
    /// The face the last forward used (backward uses the same).
    private var last: Conv2d?

    /// - Parameter minimumSide: smallest input side that is still strided (default twice the stride, so the output
    ///   is at least 2 x 2).
    public init(_ conv: Conv2d, minimumSide: Int? = nil) {
        strided = conv
        unstrided = Conv2d(sharing: conv, stride: 1)
        self.minimumSide = minimumSide ?? 2 * conv.stride
    }

    /// Whether an input of `h` x `w` is strided.
    public func strides(h: Int, w: Int) -> Bool { min(h, w) >= minimumSide }

    /// Output spatial size for an input of `h` x `w`.
    public func outputSize(h: Int, w: Int) -> (h: Int, w: Int) {
        (strides(h: h, w: w) ? strided : unstrided).outputSize(h: h, w: w)
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let conv = strides(h: x.shape[2], w: x.shape[3]) ? strided : unstrided
        last = conv
        return conv.forward(x, ctx)
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let last else { preconditionFailure("AdaptiveStrideConv2d.backward before forward") }
        return last.backward(dy, ctx)
    }
}
