/// Max pooling (PyTorch's MaxPool2d: padding counts as -infinity, floor output size).
public final class MaxPool2d: Layer {
    public let kernel: Int, stride: Int, padding: Int
    private var argmax: [Int32] = []
    private var inputShape: [Int] = []

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernel = kernel
        self.stride = stride ?? kernel
        self.padding = padding
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let (n, c, h, w) = x.nchw
        let ho = (h + 2 * padding - kernel) / stride + 1, wo = (w + 2 * padding - kernel) / stride + 1
        let y = Tensor(uninitialized: [n, c, ho, wo])
        var idx = [Int32](repeating: 0, count: ctx.recordForBackward ? y.count : 0)
        let px = x.pointer, py = y.pointer, (k, s, p) = (kernel, stride, padding), record = ctx.recordForBackward
        idx.withUnsafeMutableBufferPointer { idx in
            if (k, s, p) == (3, 2, 1) {
                Parallel.forRange(n * c, grain: 4) { r in
                    MaxPool2d.forward3x3s2(px, planes: r, h: h, w: w, into: py, ho: ho, wo: wo, argmax: record ? idx.baseAddress : nil)
                }
                return
            }
            Parallel.forRange(n * c, grain: 4) { r in
                for plane in r {
                    let src = px + plane * h * w
                    for oy in 0 ..< ho {
                        let y0 = max(0, oy * s - p), y1 = min(h, oy * s - p + k)
                        for ox in 0 ..< wo {
                            let x0 = max(0, ox * s - p), x1 = min(w, ox * s - p + k)
                            // First maximum in window order wins ties, as in PyTorch.
                            var at = y0 * w + x0, best = src[at]
                            for ky in y0 ..< y1 {
                                let row = src + ky * w
                                for kx in x0 ..< x1 where row[kx] > best {
                                    best = row[kx]; at = ky * w + kx
                                }
                            }
                            let o = plane * ho * wo + oy * wo + ox
                            py[o] = best
                            if record { idx[o] = Int32(at) }
                        }
                    }
                }
            }
        }
        argmax = idx
        inputShape = x.shape
        return y
    }

    /// 3x3 windows, stride 2, padding 1 (ResNet's stem): 8 outputs of a row at once, each window column taken from the
    /// even or odd half of a 16-wide load of the row padded with -inf. Same results as the general loop: the first
    /// maximum in window order wins (a later value replaces it only when strictly greater).
    static func forward3x3s2(_ x: UnsafePointer<Float>, planes: Range<Int>, h: Int, w: Int, into y: UnsafeMutablePointer<Float>,
                             ho: Int, wo: Int, argmax: UnsafeMutablePointer<Int32>?) {
        typealias V = SIMD8<Float>
        typealias I = SIMD8<Int32>
        // Input row yy at padded row yy + 1 (rows -1 ..< 2 ho); column xx at xx + 1; 16 floats of slack for whole loads.
        let pw = 2 * ((wo + 7) / 8 * 8) + 18, rows = 2 * ho + 1
        let pad = UnsafeMutablePointer<Float>.allocate(capacity: rows * pw)
        defer { pad.deallocate() }
        pad.initialize(repeating: -.infinity, count: rows * pw)
        let lane = I(0, 1, 2, 3, 4, 5, 6, 7) &* 2
        for plane in planes {
            let src = x + plane * h * w, out = y + plane * ho * wo
            for r in 1 ..< min(rows, h + 1) { (pad + r * pw + 1).update(from: src + (r - 1) * w, count: w) }
            for oy in 0 ..< ho {
                for ox0 in Swift.stride(from: 0, to: wo, by: 8) {
                    var best = V(repeating: -.infinity), at = I(repeating: 0)
                    for ky in 0 ..< 3 {
                        let yy = 2 * oy - 1 + ky, row = UnsafeRawPointer(pad + (yy + 1) * pw + 2 * ox0)
                        let a = row.loadUnaligned(as: SIMD16<Float>.self), b = row.loadUnaligned(fromByteOffset: 8, as: SIMD16<Float>.self)
                        let base = lane &+ Int32(yy * w + 2 * ox0 - 1)
                        @inline(__always) func take(_ v: V, _ kx: Int32) {
                            let better = v .> best
                            best.replace(with: v, where: better)
                            at.replace(with: base &+ kx, where: better)
                        }
                        take(a.evenHalf, 0)
                        take(a.oddHalf, 1)
                        take(b.evenHalf, 2)
                    }
                    let lanes = min(8, wo - ox0), o = oy * wo + ox0
                    if lanes == 8 {
                        UnsafeMutableRawPointer(out + o).storeBytes(of: best, as: V.self)
                        if let argmax { UnsafeMutableRawPointer(argmax + plane * ho * wo + o).storeBytes(of: at, as: I.self) }
                    } else {
                        for l in 0 ..< lanes {
                            out[o + l] = best[l]
                            argmax?[plane * ho * wo + o + l] = at[l]
                        }
                    }
                }
            }
        }
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        let dx = Tensor(shape: inputShape)
        let (_, _, h, w) = dx.nchw
        let (n, c, ho, wo) = dy.nchw
        let pdx = dx.pointer, pdy = dy.pointer
        argmax.withUnsafeBufferPointer { idx in
            Parallel.forRange(n * c, grain: 4) { r in
                for plane in r {
                    for i in 0 ..< ho * wo { pdx[plane * h * w + Int(idx[plane * ho * wo + i])] += pdy[plane * ho * wo + i] }
                }
            }
        }
        argmax = []
        return dx
    }
}

/// Average pooling over windows (PyTorch's AvgPool2d, count_include_pad = true), or adaptive average pooling
/// to a fixed output size (AdaptiveAvgPool2d: window i spans floor(i*H/out) ..< ceil((i+1)*H/out)).
public final class AvgPool2d: Layer {
    enum Mode { case window(kernel: Int, stride: Int, padding: Int), adaptive(h: Int, w: Int) }
    let mode: Mode
    private var inputShape: [Int] = []

    public init(kernel: Int, stride: Int? = nil, padding: Int = 0) { mode = .window(kernel: kernel, stride: stride ?? kernel, padding: padding) }

    /// AdaptiveAvgPool2d((h, w)).
    public init(adaptive h: Int, _ w: Int) { mode = .adaptive(h: h, w: w) }

    /// Window of output (oy, ox): input rows, columns, and the divisor.
    func window(_ oy: Int, _ ox: Int, h: Int, w: Int, ho: Int, wo: Int) -> (Range<Int>, Range<Int>, Float) {
        switch mode {
        case .window(let k, let s, let p):
            let y0 = oy * s - p, x0 = ox * s - p
            return (max(0, y0) ..< min(h, y0 + k), max(0, x0) ..< min(w, x0 + k), Float(k * k))
        case .adaptive:
            let rows = (oy * h / ho) ..< ((oy + 1) * h + ho - 1) / ho, cols = (ox * w / wo) ..< ((ox + 1) * w + wo - 1) / wo
            return (rows, cols, Float(rows.count * cols.count))
        }
    }

    func outputSize(h: Int, w: Int) -> (Int, Int) {
        switch mode {
        case .window(let k, let s, let p): return ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
        case .adaptive(let oh, let ow): return (oh, ow)
        }
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let (n, c, h, w) = x.nchw
        let (ho, wo) = outputSize(h: h, w: w)
        let y = Tensor(uninitialized: [n, c, ho, wo])
        let px = x.pointer, py = y.pointer
        Parallel.forRange(n * c, grain: 4) { r in
            for plane in r {
                let src = px + plane * h * w
                for oy in 0 ..< ho {
                    for ox in 0 ..< wo {
                        let (rows, cols, divisor) = self.window(oy, ox, h: h, w: w, ho: ho, wo: wo)
                        var s: Float = 0
                        for yy in rows { for xx in cols { s += src[yy * w + xx] } }
                        py[plane * ho * wo + oy * wo + ox] = s / divisor
                    }
                }
            }
        }
        inputShape = x.shape
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        let dx = Tensor(shape: inputShape)
        let (_, _, h, w) = dx.nchw
        let (n, c, ho, wo) = dy.nchw
        let pdx = dx.pointer, pdy = dy.pointer
        Parallel.forRange(n * c, grain: 4) { r in
            for plane in r {
                let dst = pdx + plane * h * w
                for oy in 0 ..< ho {
                    for ox in 0 ..< wo {
                        let (rows, cols, divisor) = self.window(oy, ox, h: h, w: w, ho: ho, wo: wo)
                        let g = pdy[plane * ho * wo + oy * wo + ox] / divisor
                        for yy in rows { for xx in cols { dst[yy * w + xx] += g } }
                    }
                }
            }
        }
        return dx
    }
}
