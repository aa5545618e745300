import Foundation
import Seeded

/// How the low-resolution view of a patch is made (EfficientTrain's curricula).
public enum LowPassMethod: String, Sendable, Codable, CaseIterable {
    /// EfficientTrain (ICCV 2023): centre crop of the 2-D Fourier spectrum.
    case fourier
    /// EfficientTrain++ (TPAMI 2024): a Lanczos resize.
    case resize
}

/// One stage of an EfficientTrain curriculum: the input side B on a 224 px scale and the augmentation magnitude.
public struct CurriculumStage: Sendable, Equatable, Codable {
    public var resolution: Int
    public var magnitude: Int
}

/// EfficientTrain++: training in stages of equal compute, from low resolution and weak augmentation to full detail
/// and stronger augmentation.
///
/// Compute is counted in full-resolution mini-batches: a mini-batch at side B costs (B / 224)^2 of one at full
/// resolution (the backbone's cost scales with the pixels). A run of E epochs of N mini-batches has E N units; each of
/// the S stages gets E N / S of them, so a stage at B runs (224 / B)^2 times as many mini-batches. The patch side the
/// backbone sees is round(P B / 224) for patches of side P, so Z keeps its grid.
public struct Curriculum: Sendable, Equatable {
    public var stages: [CurriculumStage]
    /// Mini-batches of each stage, and where each starts.
    public let batches: [Int]
    public let starts: [Int]
    /// Full-resolution mini-batch units of the whole run.
    public let totalCompute: Double

    /// The published ResNet-50 schedule: 10 stages at 96, 96, 160, 160, 160, 160, 224, 224, 224, 224 px with the
    /// augmentation magnitude rising 0 ... 9.
    public static let published: [CurriculumStage] = [96, 96, 160, 160, 160, 160, 224, 224, 224, 224].enumerated().map {
        CurriculumStage(resolution: $0.element, magnitude: $0.offset)
    }

    /// - Parameters:
    ///   - epochs: the full-resolution epochs whose compute the curriculum spends.
    ///   - batchesPerEpoch: mini-batches in one epoch.
    public init(stages: [CurriculumStage] = Curriculum.published, epochs: Int, batchesPerEpoch: Int) {
        self.stages = stages
        let perStage = Double(epochs * batchesPerEpoch) / Double(stages.count)
        batches = stages.map { max(1, Int((perStage * pow(224 / Double($0.resolution), 2)).rounded())) }
        var s: [Int] = [], total = 0
        for b in batches { s.append(total); total += b }
        starts = s
        totalCompute = zip(stages, batches).reduce(0) { $0 + Double($1.1) * Self.cost($1.0) }
    }

    /// Cost of one mini-batch at a stage, in full-resolution mini-batches.
    static func cost(_ stage: CurriculumStage) -> Double { pow(Double(stage.resolution) / 224, 2) }

    /// Mini-batches of the whole run.
    public var totalBatches: Int { (starts.last ?? 0) + (batches.last ?? 0) }

    /// The stage index of global mini-batch `g`.
    public func stageIndex(at g: Int) -> Int {
        var i = 0
        while i + 1 < starts.count && starts[i + 1] <= g { i += 1 }
        return i
    }

    /// Fraction of the run's compute spent before global mini-batch `g` (the learning-rate schedule's position).
    public func progress(at g: Int) -> Double {
        let i = stageIndex(at: g)
        let before = zip(stages[..<i], batches[..<i]).reduce(0) { $0 + Double($1.1) * Self.cost($1.0) }
        return (before + Double(g - starts[i]) * Self.cost(stages[i])) / totalCompute
    }

    /// Patch side for a stage, from the full patch side.
    public static func side(_ patch: Int, stage: CurriculumStage) -> Int { side(patch, resolution: stage.resolution) }

    /// The side of a `patch` px view at `resolution` on the 224 scale (at least 8 px, at most the patch).
    public static func side(_ patch: Int, resolution: Int) -> Int {
        max(8, min(patch, Int((Double(patch) * Double(resolution) / 224).rounded())))
    }

    /// Parses "96:0,160:4,224:9" (resolution:magnitude per stage).
    public static func parse(_ text: String) -> [CurriculumStage]? {
        let stages = text.split(separator: ",").map { part -> CurriculumStage? in
            let pieces = part.split(separator: ":").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard pieces.count == 2, pieces[0] > 0, pieces[0] <= 224, pieces[1] >= 0 else { return nil }
            return CurriculumStage(resolution: pieces[0], magnitude: pieces[1])
        }
        return stages.isEmpty || stages.contains(where: { $0 == nil }) ? nil : stages.map { $0! }
    }
}

/// RS2 (Okanovic et al.): repeated random sampling without replacement. Epoch e trains on the next r N examples of
/// a random permutation of the training set; when a permutation runs out the next one is drawn (examples taken
/// earlier in the same epoch go to its end, so no example repeats within an epoch). Every example is seen exactly
/// once per N examples drawn, i.e. once every 1/r epochs when r N divides N.
public struct SubsetSampler: Sendable {
    public let count: Int
    public let perEpoch: Int
    public let seed: UInt64

    public init(count: Int, fraction: Double, seed: UInt64) {
        self.count = count
        perEpoch = max(1, min(count, Int((Double(count) * fraction).rounded())))
        self.seed = seed
    }

    /// The examples of epoch `e` in training order (deterministic in seed and e; replays earlier epochs to find
    /// where the permutation stands, which is cheap).
    public func epoch(_ e: Int) -> [Int] {
        var permutation = shuffled(cycle: 0, excluding: [])
        var cycle = 0, position = 0
        var result: [Int] = []
        for current in 0 ... e {
            result = []
            while result.count < perEpoch {
                if position == permutation.count {
                    cycle += 1
                    permutation = shuffled(cycle: cycle, excluding: Set(result))
                    position = 0
                }
                let take = min(perEpoch - result.count, permutation.count - position)
                result += permutation[position ..< position + take]
                position += take
            }
            if current == e { break }
        }
        return result
    }

    private func shuffled(cycle: Int, excluding taken: Set<Int>) -> [Int] {
        var rng = SplitMix64(seed: seed).derived(3, UInt64(cycle))
        let order = Array(0 ..< count).shuffled(using: &rng)
        return order.filter { !taken.contains($0) } + order.filter { taken.contains($0) }
    }
}
