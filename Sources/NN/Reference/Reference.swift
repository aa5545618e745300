/// Naive double-precision forward kernels, the reference each optimised layer is tested against
/// (forward values, and gradients by finite differences of these functions).
public enum Reference {
    /// A dense NCHW array of doubles.
    public struct Array4: Equatable, Sendable {
        public var n: Int, c: Int, h: Int, w: Int
        public var v: [Double]

        public init(n: Int, c: Int, h: Int, w: Int, v: [Double]? = nil) {
            self.n = n; self.c = c; self.h = h; self.w = w
            self.v = v ?? [Double](repeating: 0, count: n * c * h * w)
        }

        public subscript(b: Int, ch: Int, y: Int, x: Int) -> Double {
            get { v[((b * c + ch) * h + y) * w + x] }
            set { v[((b * c + ch) * h + y) * w + x] = newValue }
        }
    }

    /// Conv2d: weight (O, C/g, k, k), bias (O) or empty.
    public static func conv2d(_ x: Array4, weight: [Double], bias: [Double], out o: Int, kernel k: Int, stride s: Int,
                              padding p: Int, dilation d: Int, groups g: Int) -> Array4 {
        let ho = (x.h + 2 * p - d * (k - 1) - 1) / s + 1, wo = (x.w + 2 * p - d * (k - 1) - 1) / s + 1
        let cg = x.c / g, og = o / g
        var y = Array4(n: x.n, c: o, h: ho, w: wo)
        for b in 0 ..< x.n { for oc in 0 ..< o { for oy in 0 ..< ho { for ox in 0 ..< wo {
            var sum = bias.isEmpty ? 0 : bias[oc]
            let group = oc / og
            for ci in 0 ..< cg { for ki in 0 ..< k { for kj in 0 ..< k {
                let iy = oy * s - p + ki * d, ix = ox * s - p + kj * d
                guard iy >= 0, iy < x.h, ix >= 0, ix < x.w else { continue }
                sum += weight[((oc * cg + ci) * k + ki) * k + kj] * x[b, group * cg + ci, iy, ix]
            } } }
            y[b, oc, oy, ox] = sum
        } } } }
        return y
    }

    /// BatchNorm2d with batch statistics (training) or given running statistics (evaluation).
    public static func batchNorm(_ x: Array4, gamma: [Double], beta: [Double], running: (mean: [Double], variance: [Double])?, eps: Double = 1e-5) -> Array4 {
        var y = x
        let m = Double(x.n * x.h * x.w)
        for ch in 0 ..< x.c {
            var mean = 0.0, variance = 0.0
            if let running {
                mean = running.mean[ch]; variance = running.variance[ch]
            } else {
                for b in 0 ..< x.n { for i in 0 ..< x.h { for j in 0 ..< x.w { mean += x[b, ch, i, j] } } }
                mean /= m
                for b in 0 ..< x.n { for i in 0 ..< x.h { for j in 0 ..< x.w { variance += (x[b, ch, i, j] - mean) * (x[b, ch, i, j] - mean) } } }
                variance /= m
            }
            for b in 0 ..< x.n { for i in 0 ..< x.h { for j in 0 ..< x.w {
                y[b, ch, i, j] = (x[b, ch, i, j] - mean) / (variance + eps).squareRoot() * gamma[ch] + beta[ch]
            } } }
        }
        return y
    }

    /// Max or average pooling with a square window (average counts padding), or adaptive average pooling.
    public static func pool(_ x: Array4, max: Bool, kernel k: Int, stride s: Int, padding p: Int) -> Array4 {
        let ho = (x.h + 2 * p - k) / s + 1, wo = (x.w + 2 * p - k) / s + 1
        var y = Array4(n: x.n, c: x.c, h: ho, w: wo)
        for b in 0 ..< x.n { for ch in 0 ..< x.c { for oy in 0 ..< ho { for ox in 0 ..< wo {
            var acc = max ? -Double.infinity : 0
            for ki in 0 ..< k { for kj in 0 ..< k {
                let iy = oy * s - p + ki, ix = ox * s - p + kj
                guard iy >= 0, iy < x.h, ix >= 0, ix < x.w else { continue }
                acc = max ? Swift.max(acc, x[b, ch, iy, ix]) : acc + x[b, ch, iy, ix]
            } }
            y[b, ch, oy, ox] = max ? acc : acc / Double(k * k)
        } } } }
        return y
    }

    public static func adaptiveAverage(_ x: Array4, h ho: Int, w wo: Int) -> Array4 {
        var y = Array4(n: x.n, c: x.c, h: ho, w: wo)
        for b in 0 ..< x.n { for ch in 0 ..< x.c { for oy in 0 ..< ho { for ox in 0 ..< wo {
            let y0 = oy * x.h / ho, y1 = ((oy + 1) * x.h + ho - 1) / ho, x0 = ox * x.w / wo, x1 = ((ox + 1) * x.w + wo - 1) / wo
            var acc = 0.0
            for i in y0 ..< y1 { for j in x0 ..< x1 { acc += x[b, ch, i, j] } }
            y[b, ch, oy, ox] = acc / Double((y1 - y0) * (x1 - x0))
        } } } }
        return y
    }

    /// y (n, out) = x (n, in) W^T + b.
    public static func linear(_ x: [Double], n: Int, weight: [Double], bias: [Double], in fin: Int, out fout: Int) -> [Double] {
        var y = [Double](repeating: 0, count: n * fout)
        for i in 0 ..< n { for o in 0 ..< fout {
            var s = bias.isEmpty ? 0 : bias[o]
            for j in 0 ..< fin { s += x[i * fin + j] * weight[o * fin + j] }
            y[i * fout + o] = s
        } }
        return y
    }
}
