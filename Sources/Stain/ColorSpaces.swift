import Foundation

/// CIE L*a*b* (D65) from sRGB and back, with the formulas of scikit-image and torchstain (sRGB gamma, the
/// rgb2xyz matrix 0.412453 ..., white point 0.95047, 1, 1.08883, the 0.008856 knee). L* is 0...100.
///
/// Decoding uses a 256-entry table of the sRGB gamma (inputs are bytes) and a 4097-entry table of the cube root
/// with linear interpolation (off by under 1e-5, a thousandth of an L* unit); encoding uses a 4097-entry table of the
/// inverse gamma, likewise (off by at most 1e-5, far below a grey level). `labReference` and `rgbReference` compute
/// the same without tables; tests compare the two.
public struct LabConversion: Sendable {
    static let rgbToXYZ: [[Float]] = [[0.412453, 0.357580, 0.180423],
                                      [0.212671, 0.715160, 0.072169],
                                      [0.019334, 0.119193, 0.950227]]
    static let white: SIMD3<Float> = [0.95047, 1, 1.08883]
    let linear: [Float]
    let encode: [Float]
    /// Cube roots on [0, cubeRange].
    let cubeRoots: [Float]
    static let cubeRange: Float = 1.25
    let toXYZ: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)
    let toRGB: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)

    public static let shared = LabConversion()

    init() {
        linear = (0 ..< 256).map { v in
            let c = Float(v) / 255
            return c > 0.04045 ? powf((c + 0.055) / 1.055, 2.4) : c / 12.92
        }
        cubeRoots = (0 ... 4096).map { cbrtf(Float($0) * Self.cubeRange / 4096) }
        encode = (0 ... 4096).map { i in
            let c = Float(i) / 4096
            return c > 0.0031308 ? 1.055 * powf(c, 1 / 2.4) - 0.055 : 12.92 * c
        }
        let m = Self.rgbToXYZ
        // Rows divided by the white point, so XYZ comes out already relative to it.
        toXYZ = (SIMD3(m[0][0], m[0][1], m[0][2]) / Self.white[0], SIMD3(m[1][0], m[1][1], m[1][2]) / Self.white[1],
                 SIMD3(m[2][0], m[2][1], m[2][2]) / Self.white[2])
        let inv = Self.inverse(m.map { $0.map(Double.init) })
        let w = Self.white
        toRGB = (SIMD3(Float(inv[0][0]), Float(inv[0][1]), Float(inv[0][2])) * w, SIMD3(Float(inv[1][0]), Float(inv[1][1]), Float(inv[1][2])) * w,
                 SIMD3(Float(inv[2][0]), Float(inv[2][1]), Float(inv[2][2])) * w)
    }

    static func inverse(_ m: [[Double]]) -> [[Double]] {
        let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
        func c(_ r: Int, _ k: Int) -> Double {
            let rows = (0 ..< 3).filter { $0 != r }, cols = (0 ..< 3).filter { $0 != k }
            let minor = m[rows[0]][cols[0]] * m[rows[1]][cols[1]] - m[rows[0]][cols[1]] * m[rows[1]][cols[0]]
            return ((r + k) % 2 == 0 ? 1 : -1) * minor
        }
        return (0 ..< 3).map { i in (0 ..< 3).map { j in c(j, i) / det } }
    }

    @inline(__always) static func f(_ t: Float) -> Float { t > 0.008856 ? cbrtf(t) : 7.787 * t + 16 / 116 }

    /// `f` with the cube root from the table.
    @inline(__always) func fTable(_ t: Float) -> Float {
        if !(t > 0.008856) { return 7.787 * t + 16 / 116 }
        if t >= Self.cubeRange { return cbrtf(t) }
        let p = t * (4096 / Self.cubeRange), i = Int(p), fraction = p - Float(i)
        return cubeRoots[i] + fraction * (cubeRoots[i + 1] - cubeRoots[i])
    }
    @inline(__always) static func finv(_ t: Float) -> Float { t > 0.2068966 ? t * t * t : (t - 16 / 116) / 7.787 }

    /// L*, a*, b* of one pixel.
    @inline(__always) public func lab(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<Float> {
        let c = SIMD3(linear[Int(r)], linear[Int(g)], linear[Int(b)])
        let x = fTable((toXYZ.0 * c).sum()), y = fTable((toXYZ.1 * c).sum()), z = fTable((toXYZ.2 * c).sum())
        return SIMD3(116 * y - 16, 500 * (x - y), 200 * (y - z))
    }

    /// `lab` without tables (powf, cbrtf): the reference.
    public func labReference(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<Float> {
        func decode(_ v: UInt8) -> Float { let c = Float(v) / 255; return c > 0.04045 ? powf((c + 0.055) / 1.055, 2.4) : c / 12.92 }
        let c = SIMD3(decode(r), decode(g), decode(b))
        let x = Self.f((toXYZ.0 * c).sum()), y = Self.f((toXYZ.1 * c).sum()), z = Self.f((toXYZ.2 * c).sum())
        return SIMD3(116 * y - 16, 500 * (x - y), 200 * (y - z))
    }

    /// `rgb` without tables: the reference.
    public func rgbReference(_ lab: SIMD3<Float>) -> SIMD3<Float> {
        let y = (lab[0] + 16) / 116
        let xyz = SIMD3(Self.finv(lab[1] / 500 + y), Self.finv(y), Self.finv(y - lab[2] / 200))
        let lin = SIMD3((toRGB.0 * xyz).sum(), (toRGB.1 * xyz).sum(), (toRGB.2 * xyz).sum())
        func encode(_ v: Float) -> Float { v > 0.0031308 ? 1.055 * powf(v, 1 / 2.4) - 0.055 : 12.92 * v }
        return SIMD3(min(1, max(0, encode(lin[0]))), min(1, max(0, encode(lin[1]))), min(1, max(0, encode(lin[2]))))
    }

    /// sRGB in 0...1 (clipped) of one L*a*b* pixel.
    @inline(__always) public func rgb(_ lab: SIMD3<Float>) -> SIMD3<Float> {
        let y = (lab[0] + 16) / 116
        let xyz = SIMD3(Self.finv(lab[1] / 500 + y), Self.finv(y), Self.finv(y - lab[2] / 200))
        let lin = SIMD3((toRGB.0 * xyz).sum(), (toRGB.1 * xyz).sum(), (toRGB.2 * xyz).sum())
        return SIMD3(gamma(lin[0]), gamma(lin[1]), gamma(lin[2]))
    }

    @inline(__always) func gamma(_ v: Float) -> Float {
        if !(v > 0) { return 0 }
        if v >= 1 { return 1 }
        let p = v * 4096, i = Int(p), t = p - Float(i)
        return min(1, max(0, encode[i] + t * (encode[i + 1] - encode[i])))
    }
}

/// Optical density of 8-bit intensities, Macenko's convention: OD = -ln((v + 1) / io), io the transmitted light.
struct OpticalDensity: Sendable {
    let table: [Float]
    init(io: Double) { table = (0 ..< 256).map { Float(-log((Double($0) + 1) / io)) } }
}
