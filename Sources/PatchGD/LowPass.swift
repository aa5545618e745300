import Foundation
import NN

/// Fast Fourier transforms of any length: iterative radix-2 for powers of two, Bluestein's chirp-z (through a
/// radix-2 transform of a padded length) for the rest. Complex values are split into real and imaginary arrays.
/// Unnormalised forward transform X[k] = sum_n x[n] e^{-2 pi i k n / N}; `inverse` uses e^{+...} and no 1/N.
public enum FFT {
    public static func transform(_ re: inout [Double], _ im: inout [Double], inverse: Bool = false) {
        let n = re.count
        precondition(im.count == n)
        guard n > 1 else { return }
        if n & (n - 1) == 0 { radix2(&re, &im, inverse: inverse) } else { bluestein(&re, &im, inverse: inverse) }
    }

    static func radix2(_ re: inout [Double], _ im: inout [Double], inverse: Bool) {
        let n = re.count
        var j = 0
        for i in 1 ..< n {
            var bit = n >> 1
            while j & bit != 0 { j ^= bit; bit >>= 1 }
            j |= bit
            if i < j { re.swapAt(i, j); im.swapAt(i, j) }
        }
        var length = 2
        while length <= n {
            let angle = (inverse ? 2 : -2) * Double.pi / Double(length)
            let half = length / 2
            // Twiddles computed directly (not by recurrence) to keep the error at rounding level.
            let wr = (0 ..< half).map { cos(angle * Double($0)) }, wi = (0 ..< half).map { sin(angle * Double($0)) }
            var start = 0
            while start < n {
                for k in 0 ..< half {
                    let a = start + k, b = a + half
                    let tr = re[b] * wr[k] - im[b] * wi[k], ti = re[b] * wi[k] + im[b] * wr[k]
                    re[b] = re[a] - tr; im[b] = im[a] - ti
                    re[a] += tr; im[a] += ti
                }
                start += length
            }
            length <<= 1
        }
    }

    /// X[k] = conj(w[k]) sum_n (x[n] conj(w[n])) w[k - n], w[m] = e^{i pi m^2 / N}: a convolution done with radix-2 FFTs.
    static func bluestein(_ re: inout [Double], _ im: inout [Double], inverse: Bool) {
        let n = re.count
        var m = 1
        while m < 2 * n - 1 { m <<= 1 }
        let sign: Double = inverse ? -1 : 1
        // chirp w[k] = exp(-sign i pi k^2 / n); k^2 mod 2n keeps the angle exact for large k.
        let cr = (0 ..< n).map { k -> Double in cos(Double.pi * Double((k * k) % (2 * n)) / Double(n)) }
        let ci = (0 ..< n).map { k -> Double in -sign * sin(Double.pi * Double((k * k) % (2 * n)) / Double(n)) }
        var ar = [Double](repeating: 0, count: m), ai = [Double](repeating: 0, count: m)
        for k in 0 ..< n {
            ar[k] = re[k] * cr[k] - im[k] * ci[k]
            ai[k] = re[k] * ci[k] + im[k] * cr[k]
        }
        var br = [Double](repeating: 0, count: m), bi = [Double](repeating: 0, count: m)
        br[0] = cr[0]; bi[0] = -ci[0]
        for k in 1 ..< n {
            br[k] = cr[k]; bi[k] = -ci[k]
            br[m - k] = cr[k]; bi[m - k] = -ci[k]
        }
        radix2(&ar, &ai, inverse: false)
        radix2(&br, &bi, inverse: false)
        for k in 0 ..< m {
            let r = ar[k] * br[k] - ai[k] * bi[k], i = ar[k] * bi[k] + ai[k] * br[k]
            ar[k] = r; ai[k] = i
        }
        radix2(&ar, &ai, inverse: true)
        for k in 0 ..< n {
            let r = ar[k] / Double(m), i = ai[k] / Double(m)
            re[k] = r * cr[k] - i * ci[k]
            im[k] = r * ci[k] + i * cr[k]
        }
    }

    /// The direct O(N^2) DFT, the reference the tests hold the fast paths to.
    public static func direct(_ re: [Double], _ im: [Double], inverse: Bool = false) -> (re: [Double], im: [Double]) {
        let n = re.count, sign: Double = inverse ? 1 : -1
        var outR = [Double](repeating: 0, count: n), outI = [Double](repeating: 0, count: n)
        for k in 0 ..< n {
            for t in 0 ..< n {
                let a = sign * 2 * Double.pi * Double((k * t) % n) / Double(n)
                outR[k] += re[t] * cos(a) - im[t] * sin(a)
                outI[k] += re[t] * sin(a) + im[t] * cos(a)
            }
        }
        return (outR, outI)
    }
}

/// The low-resolution views of EfficientTrain: a patch of side N shown at side B < N.
public enum LowResolution {
    /// Every (N, C, P, P) plane of `x` at side `side`, by `method`.
    public static func apply(_ x: Tensor, side b: Int, method: LowPassMethod) -> Tensor {
        let (n, c, p, _) = x.nchw
        guard b < p else { return x }
        let out = Tensor(uninitialized: [n, c, b, b])
        let px = x.pointer, po = out.pointer
        Parallel.forRange(n * c, grain: 1) { r in
            for i in r {
                let plane = Array(UnsafeBufferPointer(start: px + i * p * p, count: p * p))
                let low = method == .fourier ? fourierCrop(plane, side: p, to: b) : lanczos(plane, side: p, to: b)
                (po + i * b * b).update(from: low, count: b * b)
            }
        }
        return out
    }

    /// EfficientTrain (ICCV 2023): keep the centre B x B of the 2-D spectrum (an ideal low-pass that also shrinks the
    /// image) and transform back, amplitude rescaled by (B/N)^2 so intensities are kept; the real part is returned.
    /// `plane` is N x N row-major; the result is B x B.
    public static func fourierCrop(_ plane: [Float], side n: Int, to b: Int) -> [Float] {
        precondition(plane.count == n * n && b >= 1 && b <= n)
        // Rows, then columns (the 2-D transform is separable).
        var re = plane.map(Double.init), im = [Double](repeating: 0, count: n * n)
        transformRows(&re, &im, rows: n, cols: n, inverse: false)
        transformColumns(&re, &im, rows: n, cols: n, inverse: false)
        // Centre B x B of the shifted spectrum: frequencies -floor(B/2) ..< B - floor(B/2), mapped to the cropped grid.
        let low = b / 2
        var cr = [Double](repeating: 0, count: b * b), ci = [Double](repeating: 0, count: b * b)
        for u in 0 ..< b {
            let fu = u - low, su = (fu + n) % n, du = (fu + b) % b
            for v in 0 ..< b {
                let fv = v - low, sv = (fv + n) % n, dv = (fv + b) % b
                cr[du * b + dv] = re[su * n + sv]
                ci[du * b + dv] = im[su * n + sv]
            }
        }
        transformRows(&cr, &ci, rows: b, cols: b, inverse: true)
        transformColumns(&cr, &ci, rows: b, cols: b, inverse: true)
        // Inverse normalisation 1/B^2 times the amplitude rescale (B/N)^2 = 1/N^2.
        let scale = 1 / Double(n * n)
        return cr.map { Float($0 * scale) }
    }

    static func transformRows(_ re: inout [Double], _ im: inout [Double], rows: Int, cols: Int, inverse: Bool) {
        for r in 0 ..< rows {
            var rr = Array(re[r * cols ..< (r + 1) * cols]), ri = Array(im[r * cols ..< (r + 1) * cols])
            FFT.transform(&rr, &ri, inverse: inverse)
            re.replaceSubrange(r * cols ..< (r + 1) * cols, with: rr)
            im.replaceSubrange(r * cols ..< (r + 1) * cols, with: ri)
        }
    }

    static func transformColumns(_ re: inout [Double], _ im: inout [Double], rows: Int, cols: Int, inverse: Bool) {
        for c in 0 ..< cols {
            var cr = (0 ..< rows).map { re[$0 * cols + c] }, ci = (0 ..< rows).map { im[$0 * cols + c] }
            FFT.transform(&cr, &ci, inverse: inverse)
            for r in 0 ..< rows { re[r * cols + c] = cr[r]; im[r * cols + c] = ci[r] }
        }
    }

    /// EfficientTrain++: an antialiased Lanczos-3 resize of an N x N plane to B x B (the kernel is widened by N/B
    /// when shrinking, as image libraries do, so it also low-passes).
    public static func lanczos(_ plane: [Float], side n: Int, to b: Int) -> [Float] {
        let weights = lanczosWeights(from: n, to: b)
        var rows = [Float](repeating: 0, count: n * b)        // n rows x b columns
        for r in 0 ..< n {
            for (j, taps) in weights.enumerated() {
                var s: Float = 0
                for (i, w) in taps { s += w * plane[r * n + i] }
                rows[r * b + j] = s
            }
        }
        var out = [Float](repeating: 0, count: b * b)
        for (i, taps) in weights.enumerated() {
            for c in 0 ..< b {
                var s: Float = 0
                for (k, w) in taps { s += w * rows[k * b + c] }
                out[i * b + c] = s
            }
        }
        return out
    }

    /// For each output sample, the (input index, weight) taps of a Lanczos-3 kernel, normalised to sum 1.
    static func lanczosWeights(from n: Int, to b: Int) -> [[(Int, Float)]] {
        let scale = Double(n) / Double(b), support = 3 * max(1, scale)
        func lanczos(_ x: Double) -> Double {
            if x == 0 { return 1 }
            if abs(x) >= 3 { return 0 }
            let px = Double.pi * x
            return 3 * sin(px) * sin(px / 3) / (px * px)
        }
        return (0 ..< b).map { j in
            let center = (Double(j) + 0.5) * scale - 0.5
            let lo = Int((center - support).rounded(.up)), hi = Int((center + support).rounded(.down))
            var taps: [(Int, Double)] = []
            for i in lo ... hi {
                let w = lanczos((Double(i) - center) / max(1, scale))
                if w != 0 { taps.append((min(n - 1, max(0, i)), w)) }
            }
            let total = taps.reduce(0) { $0 + $1.1 }
            return taps.map { ($0.0, Float($0.1 / total)) }
        }
    }
}
