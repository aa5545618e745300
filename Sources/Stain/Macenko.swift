import Foundation

/// Macenko's stain normalisation (ISBI 2009), with torchstain's conventions (io 240, alpha 1, beta 0.15): optical
/// densities, the plane of the two largest eigenvectors of the tissue pixels' OD covariance, stain vectors at the
/// alpha and 100 - alpha percentiles of the angle in that plane (haematoxylin the one with the larger red OD),
/// concentrations by least squares, each stain's 99th percentile as its maximum.
public enum Macenko {
    /// The algorithm's constants.
    public struct Parameters: Codable, Equatable, Sendable {
        /// Transmitted light intensity.
        public var io: Double = 240
        /// Percentile (of 100) of the angles taken as the extreme stain directions.
        public var alpha: Double = 1
        /// Pixels with an OD below this in any channel are background (excluded from the stain vectors).
        public var beta: Double = 0.15
        /// Fewest tissue pixels to fit from; fewer, and the patch is left as it is.
        public var minimumTissuePixels: Int = 64
        /// Smallest angle in degrees between the two stain vectors: closer, and the patch holds one stain only (its
        /// second direction is quantisation noise: 0.7 degrees on a synthetic haematoxylin-only patch, against 9 to
        /// 25 degrees on real H&E) and is left as it is.
        public var minimumStainAngle: Double = 2
        public init() {}

        enum CodingKeys: String, CodingKey {
            case io, alpha, beta, minimumTissuePixels = "minimum_tissue_pixels", minimumStainAngle = "minimum_stain_angle"
        }

        /// Keys left out keep their defaults.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            io = try c.decodeIfPresent(Double.self, forKey: .io) ?? io
            alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? alpha
            beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? beta
            minimumTissuePixels = try c.decodeIfPresent(Int.self, forKey: .minimumTissuePixels) ?? minimumTissuePixels
            minimumStainAngle = try c.decodeIfPresent(Double.self, forKey: .minimumStainAngle) ?? minimumStainAngle
        }
    }

    /// Stain vectors (unit optical-density directions, R G B) and each stain's maximum concentration.
    public struct Stains: Codable, Equatable, Sendable {
        public var hematoxylin: [Double]
        public var eosin: [Double]
        public var maxConcentrations: [Double]

        public init(hematoxylin: [Double], eosin: [Double], maxConcentrations: [Double]) {
            self.hematoxylin = hematoxylin
            self.eosin = eosin
            self.maxConcentrations = maxConcentrations
        }

        /// Macenko's reference (torchstain's default target).
        public static let reference = Stains(hematoxylin: [0.5626, 0.7201, 0.4062], eosin: [0.2159, 0.8012, 0.5581],
                                             maxConcentrations: [1.9705, 1.0308])

        enum CodingKeys: String, CodingKey { case hematoxylin, eosin, maxConcentrations = "max_concentrations" }
    }

    /// Why a fit failed.
    public enum Failure: Error, Equatable, Sendable {
        /// Fewer tissue pixels than `minimumTissuePixels` (a blank or background patch).
        case tooLittleTissue(Int)
        /// The two stain directions coincide or the concentrations vanish (a single-stain or flat patch).
        case degenerate
    }

    /// Fits stains to the interleaved RGB pixels (3 bytes each). Background pixels count in the concentration
    /// percentiles, as in the reference; only tissue pixels shape the stain vectors.
    public static func fit(rgb: UnsafeBufferPointer<UInt8>, parameters: Parameters = Parameters()) -> Result<Stains, Failure> {
        fitCountingTissue(rgb: rgb, parameters: parameters).map(\.stains)
    }

    /// `fit`, with the number of tissue pixels the stain vectors came from.
    public static func fitCountingTissue(rgb: UnsafeBufferPointer<UInt8>, parameters: Parameters = Parameters()) -> Result<(stains: Stains, tissuePixels: Int), Failure> {
        let n = rgb.count / 3
        var od = [Float](repeating: 0, count: 3 * n)
        let table = OpticalDensity(io: parameters.io).table
        for i in 0 ..< 3 * n { od[i] = table[Int(rgb[i])] }
        return od.withUnsafeMutableBufferPointer { fit(od: $0, parameters: parameters).map { ($0.stains, $0.tissuePixels) } }
    }

    /// The fit, its tissue pixel count and the concentrations of every pixel (2 planes of n), reused to normalise.
    struct Fit {
        var stains: Stains
        var tissuePixels: Int
        var concentrations: [Float]
    }

    /// Fits from optical densities (3 per pixel).
    static func fit(od: UnsafeMutableBufferPointer<Float>, parameters p: Parameters) -> Result<Fit, Failure> {
        let n = od.count / 3, beta = Float(p.beta)
        // Tissue pixels: mean and covariance in double precision.
        var count = 0
        var s = SIMD3<Double>(), ss = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0 ..< n {
            let v = SIMD3(od[3 * i], od[3 * i + 1], od[3 * i + 2])
            guard v.min() >= beta else { continue }
            count += 1
            let d = SIMD3<Double>(Double(v[0]), Double(v[1]), Double(v[2]))
            s += d
            for a in 0 ..< 3 { for b in a ..< 3 { ss[a][b] += d[a] * d[b] } }
        }
        guard count >= max(2, p.minimumTissuePixels) else { return .failure(.tooLittleTissue(count)) }
        let mean = s / Double(count)
        var cov = [[Double]](repeating: [0, 0, 0], count: 3)
        for a in 0 ..< 3 { for b in a ..< 3 {
            cov[a][b] = (ss[a][b] - Double(count) * mean[a] * mean[b]) / Double(count - 1)
            cov[b][a] = cov[a][b]
        } }
        let vectors = SymmetricEigen.decompose(cov).vectors
        let e1 = SIMD3(vectors[0][1], vectors[1][1], vectors[2][1]), e2 = SIMD3(vectors[0][2], vectors[1][2], vectors[2][2])
        let f1 = SIMD3<Float>(Float(e1[0]), Float(e1[1]), Float(e1[2])), f2 = SIMD3<Float>(Float(e2[0]), Float(e2[1]), Float(e2[2]))
        var phi = [Float](repeating: 0, count: count)
        var k = 0
        for i in 0 ..< n {
            let v = SIMD3(od[3 * i], od[3 * i + 1], od[3 * i + 2])
            guard v.min() >= beta else { continue }
            phi[k] = atan2f((v * f2).sum(), (v * f1).sum())
            k += 1
        }
        let (minPhi, maxPhi) = phi.withUnsafeMutableBufferPointer {
            (Percentile.linear($0.baseAddress!, count: count, p.alpha), Percentile.linear($0.baseAddress!, count: count, 100 - p.alpha))
        }
        let vMin = e1 * cos(minPhi) + e2 * sin(minPhi), vMax = e1 * cos(maxPhi) + e2 * sin(maxPhi)
        let (h, e) = vMin[0] > vMax[0] ? (vMin, vMax) : (vMax, vMin)
        // Least squares through the normal equations of the 3 x 2 stain matrix.
        let a = (h * h).sum(), b = (h * e).sum(), c = (e * e).sum(), det = a * c - b * b
        let sine = sin(p.minimumStainAngle * .pi / 180)
        guard det > sine * sine * a * c, det.isFinite else { return .failure(.degenerate) }
        let rowH = (h * c - e * b) / det, rowE = (e * a - h * b) / det
        let ph = SIMD3<Float>(Float(rowH[0]), Float(rowH[1]), Float(rowH[2])), pe = SIMD3<Float>(Float(rowE[0]), Float(rowE[1]), Float(rowE[2]))
        var conc = [Float](repeating: 0, count: 2 * n)
        for i in 0 ..< n {
            let v = SIMD3(od[3 * i], od[3 * i + 1], od[3 * i + 2])
            conc[i] = (v * ph).sum()
            conc[n + i] = (v * pe).sum()
        }
        var scratch = conc
        let (maxH, maxE) = scratch.withUnsafeMutableBufferPointer {
            (Percentile.linear($0.baseAddress!, count: n, 99), Percentile.linear($0.baseAddress! + n, count: n, 99))
        }
        guard maxH > 1e-6, maxE > 1e-6, maxH.isFinite, maxE.isFinite else { return .failure(.degenerate) }
        let stains = Stains(hematoxylin: [h[0], h[1], h[2]], eosin: [e[0], e[1], e[2]], maxConcentrations: [maxH, maxE])
        return .success(Fit(stains: stains, tissuePixels: count, concentrations: conc))
    }

    /// Normalises interleaved RGB pixels in place to `target`'s stains; on failure the pixels are left as they were.
    public static func normalize(_ rgb: UnsafeMutableBufferPointer<UInt8>, to target: Stains, parameters p: Parameters = Parameters()) -> Failure? {
        let n = rgb.count / 3
        var od = [Float](repeating: 0, count: 3 * n)
        let table = OpticalDensity(io: p.io).table
        for i in 0 ..< 3 * n { od[i] = table[Int(rgb[i])] }
        let result = od.withUnsafeMutableBufferPointer { fit(od: $0, parameters: p) }
        guard case .success(let source) = result else {
            if case .failure(let failure) = result { return failure }
            return nil
        }
        let scaleH = Float(target.maxConcentrations[0] / source.stains.maxConcentrations[0])
        let scaleE = Float(target.maxConcentrations[1] / source.stains.maxConcentrations[1])
        let th = SIMD3<Float>(target.hematoxylin.map(Float.init)), te = SIMD3<Float>(target.eosin.map(Float.init))
        let io = Float(p.io)
        source.concentrations.withUnsafeBufferPointer { c in
            for i in 0 ..< n {
                let density = th * (c[i] * scaleH) + te * (c[n + i] * scaleE)
                for ch in 0 ..< 3 {
                    // The reference clips at 255 and truncates (astype uint8).
                    rgb[3 * i + ch] = UInt8(min(255, io * expf(-density[ch])))
                }
            }
        }
        return nil
    }
}

extension SIMD3 where Scalar == Float {
    init(_ values: [Float]) { self.init(values[0], values[1], values[2]) }
}
