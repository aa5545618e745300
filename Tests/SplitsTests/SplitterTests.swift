import Foundation
import Testing
@testable import Splits

struct SplitterTests {
    /// 5 stratified folds: every fold holds each class's share within one slide, and the split is seeded.
    @Test func foldsAreStratifiedWithinOneSlide() {
        let counts = [0: 23, 1: 7, 2: 12, 3: 3, 4: 40, 5: 9]
        let items = counts.flatMap { label, n in (0 ..< n).map { SplitItem(key: "s\(label)-\($0)", label: label) } }
        let a = Splitter.assign(items, plan: .folds(5), seed: 1)
        #expect(a.count == items.count && a.values.allSatisfy { $0.split == "train" && (0 ..< 5).contains($0.fold ?? -1) })
        for (label, n) in counts {
            for fold in 0 ..< 5 {
                let got = items.filter { $0.label == label && a[$0.key]!.fold == fold }.count
                #expect(abs(Double(got) - Double(n) / 5) < 1, "class \(label) fold \(fold): \(got) of \(n)")
            }
        }
        let sizes = (0 ..< 5).map { f in a.values.filter { $0.fold == f }.count }
        #expect(sizes.max()! - sizes.min()! <= 1, "fold sizes \(sizes)")
        #expect(Splitter.assign(items, plan: .folds(5), seed: 1) == a)
        #expect(Splitter.assign(items, plan: .folds(5), seed: 2) != a)
    }

    @Test func fractionsAreStratifiedWithinOneSlide() {
        let counts = [0: 31, 1: 10, 2: 5]
        let items = counts.flatMap { label, n in (0 ..< n).map { SplitItem(key: "s\(label)-\($0)", label: label) } }
        let a = Splitter.assign(items, plan: .fractions(train: 0.7, val: 0.2, test: 0.1), seed: 3)
        for (label, n) in counts {
            for (split, share) in [("train", 0.7), ("val", 0.2), ("test", 0.1)] {
                let got = items.filter { $0.label == label && a[$0.key]!.split == split }.count
                #expect(abs(Double(got) - Double(n) * share) < 1, "class \(label) \(split): \(got) of \(n)")
            }
        }
    }

    /// No group in two folds or splits, and the classes still spread over the folds.
    @Test func groupsNeverStraddle() {
        var items: [SplitItem] = []
        for g in 0 ..< 30 {
            for i in 0 ..< 1 + g % 4 { items.append(SplitItem(key: "g\(g)-\(i)", label: (g + i) % 3, group: "patient\(g)")) }
        }
        for plan in [SplitPlan.folds(4), .fractions(train: 0.6, val: 0.2, test: 0.2)] {
            let a = Splitter.assign(items, plan: plan, seed: 4)
            for g in 0 ..< 30 {
                let bins = Set(items.filter { $0.group == "patient\(g)" }.map { "\(a[$0.key]!.split)\(a[$0.key]!.fold ?? -1)" })
                #expect(bins.count == 1, "group \(g) is in \(bins)")
            }
            let used = Set(a.values.map { "\($0.split)\($0.fold ?? -1)" })
            #expect(used.count == (plan == .folds(4) ? 4 : 3))
        }
    }
}
