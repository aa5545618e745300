import Seeded

/// How strongly training patches are augmented; evaluation never augments.
///
/// Geometric: a random element of the square's symmetry group (horizontal flip, then 0-3 quarter turns), which keeps
/// a patch a patch. Colour: brightness, contrast and saturation each scaled by a factor drawn from
/// [1 - jitter, 1 + jitter] (torchvision's ColorJitter without hue).
public struct AugmentationSettings: Sendable, Equatable, Codable {
    public var flips = true
    public var rotations = true
    /// Colour-jitter strength (0 = none).
    public var colorJitter: Double = 0.1

    public init(flips: Bool = true, rotations: Bool = true, colorJitter: Double = 0.1) {
        self.flips = flips
        self.rotations = rotations
        self.colorJitter = colorJitter
    }

    /// No augmentation.
    public static let none = AugmentationSettings(flips: false, rotations: false, colorJitter: 0)

    public var isNone: Bool { !flips && !rotations && colorJitter == 0 }

    /// The curriculum's view of these settings at augmentation magnitude `m` of `top`: colour jitter scaled by m / top,
    /// geometric augmentations from magnitude 1 on (EfficientTrain++ starts from un-augmented images).
    public func scaled(magnitude m: Int, of top: Int) -> AugmentationSettings {
        guard top > 0 else { return self }
        return AugmentationSettings(flips: flips && m > 0, rotations: rotations && m > 0, colorJitter: colorJitter * Double(m) / Double(top))
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
        return a
    }
}

/// One patch's augmentation: mirror, quarter turns (counter-clockwise), colour factors.
public struct PatchAugmentation: Sendable, Equatable {
    public var flip = false
    public var quarterTurns = 0
    public var brightness: Float = 1
    public var contrast: Float = 1
    public var saturation: Float = 1

    public init(flip: Bool = false, quarterTurns: Int = 0, brightness: Float = 1, contrast: Float = 1, saturation: Float = 1) {
        self.flip = flip
        self.quarterTurns = quarterTurns
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
    }

    public var isIdentity: Bool { !flip && quarterTurns % 4 == 0 && brightness == 1 && contrast == 1 && saturation == 1 }

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
                out[d] = Float(rgb[s]) / 255
                out[plane + d] = Float(rgb[s + 1]) / 255
                out[2 * plane + d] = Float(rgb[s + 2]) / 255
            }
        }
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
}
