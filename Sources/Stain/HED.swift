import Foundation

/// Ruifrok and Johnston's colour deconvolution into haematoxylin, eosin and DAB, and Tellez et al.'s (2018) HED
/// augmentation: each stain's concentration s becomes s * alpha + beta, then the pixel is recomposed.
///
/// With optical densities OD = -ln(max(I, 1/255)) of intensities I in 0...1 and M scikit-image's `rgb_from_hed`,
/// stains are OD * M^-1 (row vectors); the perturbed pixel is exp(-(s * alpha + beta) * M). The whole perturbation is
/// one affine map of OD (`HEDJitter`), computed once per patch.
public enum HED {
    /// scikit-image's `rgb_from_hed` (rows: the H, E and DAB optical-density vectors).
    public static let rgbFromHED: [[Double]] = [[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]]
    public static let hedFromRGB: [[Double]] = LabConversion.inverse(rgbFromHED)

    /// Optical densities of byte intensities, -ln(max(v, 1) / 255).
    public static let density: [Float] = (0 ..< 256).map { Float(-log(Double(max($0, 1)) / 255)) }

    /// exp(-x) on [0, transmissionRange] in 8192 steps, read with linear interpolation (relative error below 3e-7):
    /// an intensity from an optical density without calling expf three times a pixel. Below 0 the intensity clips
    /// to 1, above the range it is under 1e-5.
    static let transmissionRange: Float = 12
    static let transmissionTable: [Float] = (0 ... 8192).map { expf(-Float($0) * transmissionRange / 8192) }

    /// min(1, exp(-x)) from the table.
    @inline(__always) static func transmission(_ x: Float, _ table: UnsafePointer<Float>) -> Float {
        if !(x > 0) { return 1 }
        if x >= transmissionRange { return 0 }
        let p = x * (8192 / transmissionRange), i = Int(p), f = p - Float(i)
        return table[i] + f * (table[i + 1] - table[i])
    }
}

/// One patch's HED perturbation as an affine map of optical density: OD' = OD * T + offset.
public struct HEDJitter: Sendable, Equatable {
    public var columns: (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)
    public var offset: SIMD3<Float>

    public static func == (a: HEDJitter, b: HEDJitter) -> Bool {
        a.columns.0 == b.columns.0 && a.columns.1 == b.columns.1 && a.columns.2 == b.columns.2 && a.offset == b.offset
    }

    /// T = M^-1 diag(alpha) M and offset = beta * M, for the three stains' alpha and beta (DAB's included).
    public init(alpha: SIMD3<Double>, beta: SIMD3<Double>) {
        let m = HED.rgbFromHED, inv = HED.hedFromRGB
        var t = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0 ..< 3 { for j in 0 ..< 3 { for k in 0 ..< 3 { t[i][j] += inv[i][k] * alpha[k] * m[k][j] } } }
        func column(_ j: Int) -> SIMD3<Float> { SIMD3(Float(t[0][j]), Float(t[1][j]), Float(t[2][j])) }
        columns = (column(0), column(1), column(2))
        offset = SIMD3((0 ..< 3).map { j in Float((0 ..< 3).reduce(0) { $0 + beta[$1] * m[$1][j] }) })
    }

    /// The pixel of bytes (r, g, b) perturbed, as intensities in 0...1.
    @inline(__always) public func apply(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<Float> {
        let d = HED.density
        let od = SIMD3(d[Int(r)], d[Int(g)], d[Int(b)])
        let out = SIMD3((od * columns.0).sum(), (od * columns.1).sum(), (od * columns.2).sum()) + offset
        return HED.transmissionTable.withUnsafeBufferPointer { t in
            SIMD3(HED.transmission(out[0], t.baseAddress!), HED.transmission(out[1], t.baseAddress!), HED.transmission(out[2], t.baseAddress!))
        }
    }

    /// `apply` with expf: the reference the table is tested against.
    public func applyReference(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> SIMD3<Float> {
        let d = HED.density
        let od = SIMD3(d[Int(r)], d[Int(g)], d[Int(b)])
        let out = SIMD3((od * columns.0).sum(), (od * columns.1).sum(), (od * columns.2).sum()) + offset
        return SIMD3(min(1, expf(-out[0])), min(1, expf(-out[1])), min(1, expf(-out[2])))
    }
}
