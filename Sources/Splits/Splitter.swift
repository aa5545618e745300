import Seeded

/// One slide to split: its key, class and optional group (patient, data provider): a group never straddles splits.
public struct SplitItem: Sendable, Equatable {
    public var key: String
    public var label: Int
    public var group: String?

    public init(key: String, label: Int, group: String? = nil) {
        self.key = key
        self.label = label
        self.group = group
    }
}

/// How to split: k stratified folds, or train/val/test fractions.
public enum SplitPlan: Sendable, Equatable {
    case folds(Int)
    case fractions(train: Double, val: Double, test: Double)
}

/// Where one slide went: `train`, `val` or `test`, and its fold for k-fold plans (every slide is `train` then, and
/// `gigapatch-train --val-fold F` validates on fold F).
public struct SplitAssignment: Sendable, Equatable {
    public var split: String
    public var fold: Int?
}

/// Stratified, seeded splitting.
///
/// Without groups, each class is shuffled and dealt out so every fold (or split) gets its share of each class
/// within one slide: folds by dealing round-robin from a starting fold that rotates from class to class, fractions
/// by rounding each class's share. With groups, whole groups are placed greedily (largest first, seeded order among
/// equals) in the bin where they least increase the squared distance of the per-class counts from their targets.
public enum Splitter {
    public static func assign(_ items: [SplitItem], plan: SplitPlan, seed: UInt64) -> [String: SplitAssignment] {
        var rng = SplitMix64(seed: seed)
        let bins: [(split: String, fold: Int?, share: Double)]
        switch plan {
        case .folds(let k): bins = (0 ..< k).map { ("train", $0, 1 / Double(k)) }
        case .fractions(let train, let val, let test):
            let total = train + val + test
            bins = [("train", nil, train / total), ("val", nil, val / total), ("test", nil, test / total)]
        }
        var result: [String: SplitAssignment] = [:]
        let labels = Set(items.map(\.label)).sorted()
        if items.allSatisfy({ $0.group == nil }) {
            var start = 0
            for label in labels {
                var members = items.filter { $0.label == label }.map(\.key)
                members.shuffle(using: &rng)
                switch plan {
                case .folds(let k):
                    for (i, key) in members.enumerated() { result[key] = SplitAssignment(split: "train", fold: (start + i) % k) }
                    start = (start + members.count) % k
                case .fractions:
                    let n = Double(members.count)
                    let nVal = Int((n * bins[1].share).rounded()), nTest = min(members.count - nVal, Int((n * bins[2].share).rounded()))
                    for (i, key) in members.enumerated() {
                        result[key] = SplitAssignment(split: i < nVal ? "val" : i < nVal + nTest ? "test" : "train", fold: nil)
                    }
                }
            }
            return result
        }
        // Groups: items without a group are groups of one.
        var groups: [String: [SplitItem]] = [:]
        for item in items { groups[item.group ?? "\u{0}" + item.key, default: []].append(item) }
        var order = groups.keys.sorted()
        order.shuffle(using: &rng)
        order = order.enumerated().sorted { a, b in
            let (na, nb) = (groups[a.element]!.count, groups[b.element]!.count)
            return na != nb ? na > nb : a.offset < b.offset
        }.map(\.element)
        let classTotals = Dictionary(grouping: items, by: \.label).mapValues { Double($0.count) }
        var counts = Array(repeating: [Int: Double](), count: bins.count)
        var sizes = Array(repeating: 0.0, count: bins.count)
        for name in order {
            let members = groups[name]!
            let histogram = Dictionary(grouping: members, by: \.label).mapValues { Double($0.count) }
            var best = 0, bestCost = Double.infinity
            for (b, bin) in bins.enumerated() where bin.share > 0 {
                var cost = 0.0
                for (label, n) in histogram {
                    let target = classTotals[label]! * bin.share, now = counts[b][label, default: 0]
                    cost += (now + n - target) * (now + n - target) - (now - target) * (now - target)
                }
                // Ties go to the bin furthest below its overall share.
                cost += 1e-6 * (sizes[b] + Double(members.count)) / bin.share
                if cost < bestCost { bestCost = cost; best = b }
            }
            for (label, n) in histogram { counts[best][label, default: 0] += n }
            sizes[best] += Double(members.count)
            for item in members { result[item.key] = SplitAssignment(split: bins[best].split, fold: bins[best].fold) }
        }
        return result
    }
}
