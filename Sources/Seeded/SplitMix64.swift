/// SplitMix64: a small, fast, seedable random generator so generated data and training runs repeat exactly.
///
/// `derived(_:)` makes independent streams (per image, per worker) from one seed, so results do not
/// depend on how work is split across threads.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable, Codable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// An independent generator for stream `keys` under this seed (keys are mixed, not added).
    public func derived(_ keys: UInt64...) -> SplitMix64 {
        var mixer = SplitMix64(seed: state ^ 0x5851_F42D_4C95_7F2D)
        var seed = mixer.next()
        for key in keys {
            mixer = SplitMix64(seed: seed ^ (key &* 0xD1B5_4A32_D192_ED03))
            seed = mixer.next()
        }
        return SplitMix64(seed: seed)
    }

    /// A uniform draw in `0 ..< weights.count` with probability proportional to `weights`.
    public mutating func weightedIndex(_ weights: [Double]) -> Int {
        let total = weights.reduce(0, +)
        var r = Double.random(in: 0 ..< total, using: &self)
        for (i, w) in weights.enumerated() {
            if r < w { return i }
            r -= w
        }
        return weights.count - 1
    }
}
