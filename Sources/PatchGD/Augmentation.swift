import Foundation
import Seeded
import Stain

/// How strongly training patches are augmented; evaluation never augments.
///
/// Geometric: a random element of the square's symmetry group (horizontal flip, then 0-3 quarter turns), which keeps
/// a patch a patch. Stain: HED jitter (Tellez et al. 2018), each of the haematoxylin, eosin and DAB concentrations
/// s becoming s * alpha + beta with alpha in [1 - hed, 1 + hed] and beta in [-hed, hed] (optical density, natural
/// log). Colour: brightness, contrast and saturation each scaled by a factor drawn from [1 - jitter, 1 + jitter]
/// (torchvision's ColorJitter), then the hue turned by up to +-hue of a full turn (a rotation of YIQ chroma). Then a
/// Gaussian blur of sigma drawn from [0, blur] pixels, and Gaussian noise of standard deviation drawn from [0, noise]
/// (intensities 0...1).
public struct AugmentationSettings: Sendable, Equatable, Codable {
    public var flips = true
    public var rotations = true
    /// Colour-jitter strength (0 = none).
    public var colorJitter: Double = 0.1
    /// HED jitter strength (0 = none).
    public var hedJitter: Double = 0
    /// Largest hue turn, as a fraction of a full turn (0 = none).
    public var hueJitter: Double = 0
    /// Largest Gaussian blur sigma in pixels (0 = none).
    public var blur: Double = 0
    /// Largest noise standard deviation (0 = none).
    public var noise: Double = 0

    public init(flips: Bool = true, rotations: Bool = true, colorJitter: Double = 0.1, hedJitter: Double = 0, hueJitter: Double = 0,
                blur: Double = 0, noise: Double = 0) {
        self.flips = flips
        self.rotations = rotations
        self.colorJitter = colorJitter
        self.hedJitter = hedJitter
        self.hueJitter = hueJitter
        self.blur = blur
        self.noise = noise
    }

    /// No augmentation.
    public static let none = AugmentationSettings(flips: false, rotations: false, colorJitter: 0)

    public var isNone: Bool { !flips && !rotations && colorJitter == 0 && hedJitter == 0 && hueJitter == 0 && blur == 0 && noise == 0 }

    /// The curriculum's view of these settings at augmentation magnitude `m` of `top`: every strength scaled by m / top,
    /// geometric augmentations from magnitude 1 on (EfficientTrain++ starts from un-augmented images).
    public func scaled(magnitude m: Int, of top: Int) -> AugmentationSettings {
        guard top > 0 else { return self }
        let f = Double(m) / Double(top)
        return AugmentationSettings(flips: flips && m > 0, rotations: rotations && m > 0, colorJitter: colorJitter * f,
                                    hedJitter: hedJitter * f, hueJitter: hueJitter * f, blur: blur * f, noise: noise * f)
    }

    /// Draws one patch's augmentation; the same seed always gives the same augmentation.
    public func draw(seed: UInt64) -> PatchAugmentation {
        var rng = SplitMix64(seed: seed)
        var a = PatchAugmentation()
        if flips { a.flip = rng.next() & 1 == 1 }
        if rotations { a.quarterTurns = Int(rng.next() % 4) }
        if colorJitter > 0 {
            let j = Float(colorJitter)
            a.brightness = Float.random(in: 1 - j ... 1 + j, using: &rng)
            a.contrast = Float.random(in: 1 - j ... 1 + j, using: &rng)
            a.saturation = Float.random(in: 1 - j ... 1 + j, using: &rng)
        }
        // Drawn after the older augmentations, so that their draws (and runs that use only them) stay as they were.
        if hedJitter > 0 {
            let h = hedJitter
            let alpha = SIMD3((0 ..< 3).map { _ in Double.random(in: 1 - h ... 1 + h, using: &rng) })
            let beta = SIMD3((0 ..< 3).map { _ in Double.random(in: -h ... h, using: &rng) })
            a.hed = HEDJitter(alpha: alpha, beta: beta)
        }
        if hueJitter > 0 { a.hue = Float.random(in: Float(-hueJitter) ... Float(hueJitter), using: &rng) }
        if blur > 0 { a.blurSigma = Float.random(in: 0 ... Float(blur), using: &rng) }
        if noise > 0 {
            a.noiseStd = Float.random(in: 0 ... Float(noise), using: &rng)
            a.noiseSeed = rng.next()
        }
        return a
    }
}

extension SIMD3 where Scalar == Double {
    init(_ v: [Double]) { self.init(v[0], v[1], v[2]) }
}

/// One patch's augmentation: mirror, quarter turns (counter-clockwise), colour factors.
public struct PatchAugmentation: Sendable, Equatable {
    public var flip = false
    public var quarterTurns = 0
    public var brightness: Float = 1
    public var contrast: Float = 1
    public var saturation: Float = 1
    /// HED perturbation (nil = none).
    public var hed: HEDJitter?
    /// Hue turn as a fraction of a full turn.
    public var hue: Float = 0
    /// Gaussian blur sigma in pixels (0 = none).
    public var blurSigma: Float = 0
    /// Noise standard deviation and the seed of its values.
    public var noiseStd: Float = 0
    public var noiseSeed: UInt64 = 0

    public init(flip: Bool = false, quarterTurns: Int = 0, brightness: Float = 1, contrast: Float = 1, saturation: Float = 1) {
        self.flip = flip
        self.quarterTurns = quarterTurns
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
    }

    public var isIdentity: Bool {
        !flip && quarterTurns % 4 == 0 && brightness == 1 && contrast == 1 && saturation == 1 && hed == nil && hue == 0 && blurSigma == 0
            && noiseStd == 0
    }

    /// The source pixel (x, y) of output pixel (x, y) in a p x p square: quarter turns of the (optionally mirrored) patch.
    @inline(__always)
    func source(x: Int, y: Int, p: Int) -> (x: Int, y: Int) {
        var sx = x, sy = y
        switch quarterTurns & 3 {
        case 1: (sx, sy) = (p - 1 - y, x)
        case 2: (sx, sy) = (p - 1 - x, p - 1 - y)
        case 3: (sx, sy) = (y, p - 1 - x)
        default: break
        }
        if flip { sx = p - 1 - sx }
        return (sx, sy)
    }

    /// Applies the augmentation to interleaved RGB bytes of a p x p patch, writing planar floats in [0, 1] to `out` (3 planes).
    func apply(rgb: UnsafeBufferPointer<UInt8>, p: Int, into out: UnsafeMutablePointer<Float>) {
        let plane = p * p
        let geometric = flip || quarterTurns & 3 != 0
        for y in 0 ..< p {
            for x in 0 ..< p {
                let (sx, sy) = geometric ? source(x: x, y: y, p: p) : (x, y)
                let s = 3 * (sy * p + sx), d = y * p + x
                if let hed {
                    let v = hed.apply(rgb[s], rgb[s + 1], rgb[s + 2])
                    out[d] = v[0]; out[plane + d] = v[1]; out[2 * plane + d] = v[2]
                } else {
                    out[d] = Float(rgb[s]) / 255
                    out[plane + d] = Float(rgb[s + 1]) / 255
                    out[2 * plane + d] = Float(rgb[s + 2]) / 255
                }
            }
        }
        applyColor(out, plane: plane)
        if hue != 0 { Self.turnHue(out, plane: plane, by: hue) }
        if blurSigma > 0 { for c in 0 ..< 3 { Self.blur(out + c * plane, side: p, sigma: blurSigma) } }
        if noiseStd > 0 { Self.addNoise(out, count: 3 * plane, std: noiseStd, seed: noiseSeed) }
    }

    /// Brightness, contrast and saturation (torchvision's order), clamping after each.
    private func applyColor(_ out: UnsafeMutablePointer<Float>, plane: Int) {
        guard brightness != 1 || contrast != 1 || saturation != 1 else { return }
        // torchvision order: brightness, contrast (around the mean gray), saturation (around each pixel's gray); clamp each.
        let r = out, g = out + plane, b = out + 2 * plane
        func clamp(_ v: Float) -> Float { min(1, max(0, v)) }
        var grayMean: Float = 0
        for i in 0 ..< plane {
            r[i] = clamp(r[i] * brightness); g[i] = clamp(g[i] * brightness); b[i] = clamp(b[i] * brightness)
            grayMean += 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]
        }
        grayMean /= Float(plane)
        for i in 0 ..< plane {
            r[i] = clamp((r[i] - grayMean) * contrast + grayMean)
            g[i] = clamp((g[i] - grayMean) * contrast + grayMean)
            b[i] = clamp((b[i] - grayMean) * contrast + grayMean)
            let gray = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]
            r[i] = clamp((r[i] - gray) * saturation + gray)
            g[i] = clamp((g[i] - gray) * saturation + gray)
            b[i] = clamp((b[i] - gray) * saturation + gray)
        }
    }

    /// Turns the hue of planar RGB by `turn` of a full turn: a rotation of the chroma (I, Q) in YIQ, luma kept; clamped.
    static func turnHue(_ out: UnsafeMutablePointer<Float>, plane: Int, by turn: Float) {
        let angle = 2 * Float.pi * turn, c = cosf(angle), s = sinf(angle)
        let r = out, g = out + plane, b = out + 2 * plane
        for i in 0 ..< plane {
            let y = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i]
            let ci = 0.596 * r[i] - 0.274 * g[i] - 0.322 * b[i]
            let cq = 0.211 * r[i] - 0.523 * g[i] + 0.312 * b[i]
            let i2 = c * ci - s * cq, q2 = s * ci + c * cq
            r[i] = min(1, max(0, y + 0.956 * i2 + 0.621 * q2))
            g[i] = min(1, max(0, y - 0.272 * i2 - 0.647 * q2))
            b[i] = min(1, max(0, y - 1.106 * i2 + 1.703 * q2))
        }
    }

    /// The normalised Gaussian taps of radius ceil(3 sigma) (at most side - 1).
    static func gaussianTaps(sigma: Float, side p: Int) -> [Float] {
        let radius = min(p - 1, Int((3 * sigma).rounded(.up)))
        guard radius > 0 else { return [1] }
        let weights = (-radius ... radius).map { expf(-Float($0 * $0) / (2 * sigma * sigma)) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }

    /// Separable Gaussian blur of one side x side plane in place, edges clamped: each pass is a sum of shifted rows
    /// (axpy over contiguous memory, which the compiler vectorises), 20x faster than `blurReference`.
    static func blur(_ plane: UnsafeMutablePointer<Float>, side p: Int, sigma: Float) {
        let taps = gaussianTaps(sigma: sigma, side: p), r = taps.count / 2
        guard r > 0 else { return }
        let padded = UnsafeMutablePointer<Float>.allocate(capacity: p + 2 * r)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: p * p)
        defer { padded.deallocate(); scratch.deallocate() }
        taps.withUnsafeBufferPointer { w in
            // Rows: pad each row by clamping, then out[x] = sum_k w[k] * padded[x + k].
            for y in 0 ..< p {
                let line = plane + y * p, out = scratch + y * p
                for i in 0 ..< r { padded[i] = line[0]; padded[p + r + i] = line[p - 1] }
                (padded + r).update(from: line, count: p)
                for x in 0 ..< p { out[x] = 0 }
                for k in 0 ..< w.count {
                    let wk = w[k], src = padded + k
                    for x in 0 ..< p { out[x] += wk * src[x] }
                }
            }
            // Columns: out row y = sum_k w[k] * row clamp(y + k - r), whole rows at a time.
            for y in 0 ..< p {
                let out = plane + y * p
                for x in 0 ..< p { out[x] = 0 }
                for k in 0 ..< w.count {
                    let wk = w[k], src = scratch + min(p - 1, max(0, y + k - r)) * p
                    for x in 0 ..< p { out[x] += wk * src[x] }
                }
            }
        }
    }

    /// The same blur, one output pixel at a time with clamped taps: the reference `blur` is tested against.
    static func blurReference(_ plane: UnsafeMutablePointer<Float>, side p: Int, sigma: Float) {
        let taps = gaussianTaps(sigma: sigma, side: p), r = taps.count / 2
        guard r > 0 else { return }
        var rows = [Float](repeating: 0, count: p * p)
        for y in 0 ..< p { for x in 0 ..< p {
            rows[y * p + x] = (0 ..< taps.count).reduce(0) { $0 + taps[$1] * plane[y * p + min(p - 1, max(0, x + $1 - r))] }
        } }
        for y in 0 ..< p { for x in 0 ..< p {
            plane[y * p + x] = (0 ..< taps.count).reduce(0) { $0 + taps[$1] * rows[min(p - 1, max(0, y + $1 - r)) * p + x] }
        } }
    }

    /// Standard normal quantiles at (i + 0.5) / 65536: a 16-bit random index draws from the normal distribution
    /// (discretised at 65536 levels) with one table read, instead of Box-Muller's log, sine and cosine.
    static let normalTable: [Float] = (0 ..< 65536).map { i in Float(inverseNormal((Double(i) + 0.5) / 65536)) }

    /// The standard normal quantile function (Acklam's rational approximation refined by one Newton step on erfc:
    /// below 1e-12 relative error).
    static func inverseNormal(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        var x: Double
        if p < 0.02425 {
            let q = (-2 * log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p > 1 - 0.02425 {
            let q = (-2 * log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        }
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        return x - u / (1 + x * u / 2)
    }

    /// Adds Gaussian noise of standard deviation `std` (four table draws per 64 random bits) and clamps to 0...1.
    static func addNoise(_ out: UnsafeMutablePointer<Float>, count n: Int, std: Float, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        normalTable.withUnsafeBufferPointer { table in
            var i = 0
            while i < n {
                var bits = rng.next()
                for _ in 0 ..< min(4, n - i) {
                    out[i] = min(1, max(0, out[i] + std * table[Int(bits & 0xFFFF)]))
                    bits >>= 16
                    i += 1
                }
            }
        }
    }
}
