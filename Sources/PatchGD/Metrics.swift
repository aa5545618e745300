import Foundation

/// Classification metrics over (actual, predicted) class pairs.
public struct ClassificationMetrics: Sendable, Equatable, Codable {
    public var count: Int
    public var accuracy: Double
    /// Quadratic weighted kappa (PANDA's metric): 1 - sum(W * O) / sum(W * E), W[i][j] = (i - j)^2 / (K - 1)^2.
    public var kappa: Double
    /// confusion[actual][predicted].
    public var confusion: [[Int]]

    public init(actual: [Int], predicted: [Int], classes: Int) {
        precondition(actual.count == predicted.count)
        count = actual.count
        confusion = Array(repeating: Array(repeating: 0, count: classes), count: classes)
        for (a, p) in zip(actual, predicted) where a >= 0 && a < classes && p >= 0 && p < classes { confusion[a][p] += 1 }
        accuracy = count == 0 ? 0 : Double(zip(actual, predicted).filter { $0 == $1 }.count) / Double(count)
        kappa = Self.quadraticWeightedKappa(confusion: confusion)
    }

    /// Quadratic weighted kappa from a confusion matrix. When both raters use one and the same class throughout
    /// (no expected disagreement), agreement is perfect and kappa is 1.
    public static func quadraticWeightedKappa(confusion o: [[Int]]) -> Double {
        let k = o.count
        guard k > 1 else { return 1 }
        let n = Double(o.joined().reduce(0, +))
        guard n > 0 else { return 0 }
        let rowSums = o.map { Double($0.reduce(0, +)) }
        let colSums = (0 ..< k).map { j in Double(o.reduce(0) { $0 + $1[j] }) }
        var observed = 0.0, expected = 0.0
        for i in 0 ..< k {
            for j in 0 ..< k {
                let w = Double((i - j) * (i - j)) / Double((k - 1) * (k - 1))
                observed += w * Double(o[i][j])
                expected += w * rowSums[i] * colSums[j] / n
            }
        }
        return expected == 0 ? 1 : 1 - observed / expected
    }

    /// The confusion matrix as text: one row per actual class, columns are predicted classes.
    public func confusionTable() -> String {
        let k = confusion.count
        let width = max(4, String(confusion.joined().max() ?? 0).count + 1)
        func pad(_ s: String) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        var lines = ["actual\\pred " + (0 ..< k).map { pad(String($0)) }.joined()]
        for a in 0 ..< k { lines.append(pad(String(a)).padding(toLength: 12, withPad: " ", startingAt: 0) + confusion[a].map { pad(String($0)) }.joined()) }
        return lines.joined(separator: "\n")
    }
}
