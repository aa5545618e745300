/// Resampling of rasters: area averaging (for reductions) and bilinear interpolation (for any scale).
public enum Resample {
    /// Box edges that split `source` samples into `target` consecutive boxes of near-equal size.
    ///
    /// Edge `i` is `floor(i * source / target)`; every box has at least one sample when `target <= source`.
    /// Thumbnails read in blocks use the global edges so that a block boundary never changes a box.
    public static func boxEdges(source: Int, target: Int) -> [Int] {
        precondition(target > 0 && source > 0)
        return (0 ... target).map { i in
            let edge = i * source / target
            return i > 0 ? max(edge, min(source, i)) : 0
        }
    }

    /// Averages the boxes `[xEdges[i], xEdges[i+1]) x [yEdges[j], yEdges[j+1])` of `source` (edges relative to it).
    ///
    /// - Parameters:
    ///   - source: the raster to reduce; edges beyond it are clamped.
    ///   - xEdges: `outWidth + 1` increasing column edges.
    ///   - yEdges: `outHeight + 1` increasing row edges.
    public static func area(_ source: Raster, xEdges: ArraySlice<Int>, yEdges: ArraySlice<Int>) -> Raster {
        let outW = xEdges.count - 1, outH = yEdges.count - 1, c = source.channels
        var out = Raster(width: outW, height: outH, channels: c)
        let xs = Array(xEdges), ys = Array(yEdges)
        source.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                var sums = [Int](repeating: 0, count: c)
                for oy in 0 ..< outH {
                    let y0 = max(0, ys[oy]), y1 = min(source.height, max(ys[oy + 1], ys[oy] + 1))
                    for ox in 0 ..< outW {
                        let x0 = max(0, xs[ox]), x1 = min(source.width, max(xs[ox + 1], xs[ox] + 1))
                        for k in 0 ..< c { sums[k] = 0 }
                        var count = 0
                        if y0 < y1 && x0 < x1 {
                            for y in y0 ..< y1 {
                                var p = (y * source.width + x0) * c
                                for _ in x0 ..< x1 {
                                    for k in 0 ..< c { sums[k] += Int(src[p + k]) }
                                    p += c
                                }
                            }
                            count = (y1 - y0) * (x1 - x0)
                        }
                        let o = (oy * outW + ox) * c
                        for k in 0 ..< c { dst[o + k] = count > 0 ? UInt8((sums[k] + count / 2) / count) : 255 }
                    }
                }
            }
        }
        return out
    }

    /// Area-averaged resize to `width` x `height` (meant for shrinking; enlarging replicates pixels).
    public static func area(_ source: Raster, width: Int, height: Int) -> Raster {
        area(source, xEdges: boxEdges(source: source.width, target: width)[...],
             yEdges: boxEdges(source: source.height, target: height)[...])
    }

    /// Bilinear resize to `width` x `height` with pixel centres aligned (PyTorch `align_corners=False`).
    public static func bilinear(_ source: Raster, width: Int, height: Int) -> Raster {
        let c = source.channels
        var out = Raster(width: width, height: height, channels: c)
        guard source.width > 0, source.height > 0 else { return out }
        let sx = Double(source.width) / Double(width), sy = Double(source.height) / Double(height)
        source.pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for oy in 0 ..< height {
                    let fy = max(0, (Double(oy) + 0.5) * sy - 0.5)
                    let y0 = min(Int(fy), source.height - 1), y1 = min(y0 + 1, source.height - 1)
                    let wy = fy - Double(y0)
                    for ox in 0 ..< width {
                        let fx = max(0, (Double(ox) + 0.5) * sx - 0.5)
                        let x0 = min(Int(fx), source.width - 1), x1 = min(x0 + 1, source.width - 1)
                        let wx = fx - Double(x0)
                        for k in 0 ..< c {
                            let a = Double(src[(y0 * source.width + x0) * c + k]), b = Double(src[(y0 * source.width + x1) * c + k])
                            let d = Double(src[(y1 * source.width + x0) * c + k]), e = Double(src[(y1 * source.width + x1) * c + k])
                            let v = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy
                            dst[(oy * width + ox) * c + k] = UInt8(min(255, max(0, v.rounded())))
                        }
                    }
                }
            }
        }
        return out
    }
}
