import Foundation

/// Reinhard's colour transfer (2001) in CIE L*a*b*, as torchstain does it, except that the statistics are taken over
/// tissue only: each channel is standardised with the image's tissue mean and standard deviation, then given the
/// target's. Background (L* at or above `tissueLightness`) does not shape the statistics but is transformed like the rest.
public enum Reinhard {
    /// Per-channel L*a*b* mean and (population) standard deviation of tissue pixels.
    public struct Statistics: Codable, Equatable, Sendable {
        public var mean: [Double]
        public var std: [Double]
        public init(mean: [Double], std: [Double]) {
            self.mean = mean
            self.std = std
        }
    }

    public struct Parameters: Codable, Equatable, Sendable {
        /// Pixels with L* (0...100) at or above this are background.
        public var tissueLightness: Double = 90
        /// Fewest tissue pixels to take statistics from; fewer, and the patch is left as it is.
        public var minimumTissuePixels: Int = 64
        public init() {}

        enum CodingKeys: String, CodingKey { case tissueLightness = "tissue_lightness", minimumTissuePixels = "minimum_tissue_pixels" }

        /// Keys left out keep their defaults.
        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            tissueLightness = try c.decodeIfPresent(Double.self, forKey: .tissueLightness) ?? tissueLightness
            minimumTissuePixels = try c.decodeIfPresent(Int.self, forKey: .minimumTissuePixels) ?? minimumTissuePixels
        }
    }

    public enum Failure: Error, Equatable, Sendable {
        case tooLittleTissue(Int)
        /// A channel without spread (a flat patch): standardising would divide by zero.
        case flat
    }

    /// Sums of tissue pixels' L*a*b* values and squares, to pool statistics over many patches in bounded memory.
    public struct Accumulator: Sendable {
        public private(set) var count = 0
        var sum = SIMD3<Double>(), squares = SIMD3<Double>()
        public init() {}

        public mutating func add(rgb: UnsafeBufferPointer<UInt8>, parameters: Parameters = Parameters()) {
            let lab = LabConversion.shared, limit = Float(parameters.tissueLightness)
            for i in 0 ..< rgb.count / 3 {
                let v = lab.lab(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])
                if v[0] < limit { add(v) }
            }
        }

        @inline(__always) mutating func add(_ v: SIMD3<Float>) {
            let d = SIMD3<Double>(Double(v[0]), Double(v[1]), Double(v[2]))
            count += 1
            sum += d
            squares += d * d
        }

        public mutating func add(_ other: Accumulator) {
            count += other.count
            sum += other.sum
            squares += other.squares
        }

        public func statistics(parameters: Parameters = Parameters()) -> Result<Statistics, Failure> {
            guard count >= max(2, parameters.minimumTissuePixels) else { return .failure(.tooLittleTissue(count)) }
            let mean = sum / Double(count)
            let variance = squares / Double(count) - mean * mean
            let std = SIMD3<Double>(variance[0].squareRoot(), variance[1].squareRoot(), variance[2].squareRoot())
            guard std.min() > 1e-3, std.min().isFinite else { return .failure(.flat) }
            return .success(Statistics(mean: [mean[0], mean[1], mean[2]], std: [std[0], std[1], std[2]]))
        }
    }

    public static func statistics(rgb: UnsafeBufferPointer<UInt8>, parameters: Parameters = Parameters()) -> Result<Statistics, Failure> {
        var a = Accumulator()
        a.add(rgb: rgb, parameters: parameters)
        return a.statistics(parameters: parameters)
    }

    /// Normalises interleaved RGB pixels in place to `target`; on failure the pixels are left as they were.
    public static func normalize(_ rgb: UnsafeMutableBufferPointer<UInt8>, to target: Statistics, parameters: Parameters = Parameters()) -> Failure? {
        // Each pixel's L*a*b* once, for the statistics and the transform.
        let n = rgb.count / 3, lab = LabConversion.shared, limit = Float(parameters.tissueLightness)
        let values = UnsafeMutablePointer<SIMD3<Float>>.allocate(capacity: n)
        defer { values.deallocate() }
        var accumulator = Accumulator()
        for i in 0 ..< n {
            let v = lab.lab(rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2])
            values[i] = v
            if v[0] < limit { accumulator.add(v) }
        }
        let source: Statistics
        switch accumulator.statistics(parameters: parameters) {
        case .success(let s): source = s
        case .failure(let f): return f
        }
        let scale = SIMD3<Float>((0 ..< 3).map { Float(target.std[$0] / source.std[$0]) })
        let shift = SIMD3<Float>((0 ..< 3).map { Float(target.mean[$0] - source.mean[$0] * target.std[$0] / source.std[$0]) })
        for i in 0 ..< n {
            let v = values[i] * scale + shift
            let out = lab.rgb(v) * 255
            // The reference truncates (astype uint8).
            rgb[3 * i] = UInt8(out[0]); rgb[3 * i + 1] = UInt8(out[1]); rgb[3 * i + 2] = UInt8(out[2])
        }
        return nil
    }
}
