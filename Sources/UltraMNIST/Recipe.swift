/// The parameters of an UltraMNIST variant: image size, digits per image, classes, digit scales, noise.
public struct UltraMNISTRecipe: Sendable, Equatable, Codable {
    /// Image side in pixels (square images).
    public var size: Int
    /// Digits per image, inclusive range.
    public var minDigits: Int
    public var maxDigits: Int
    /// Number of classes: labels are digit sums 0 ..< classes.
    public var classes: Int
    /// Digit scale factors (digit side = 28 x factor), inclusive range.
    public var minScale: Int
    public var maxScale: Int
    /// Relative probability of each factor in `minScale...maxScale` (V-shaped in both published variants).
    public var scaleWeights: [Double]
    /// Probability that a factor-1 digit is drawn at 14 x 14 instead of 28 x 28.
    public var halfSizeChance: Double
    /// Background noise (checkerboard, affine distortion, circles, triangles), XOR-ed with the digits.
    public var noise: Bool

    /// The Kaggle UltraMNIST challenge: 4000 x 4000, 3-5 digits, sums 0-27, factors 1-75 V-weighted 38...1, 1...37, noise.
    public static let kaggle = UltraMNISTRecipe(
        size: 4000, minDigits: 3, maxDigits: 5, classes: 28, minScale: 1, maxScale: 75,
        scaleWeights: vShape(descendingFrom: 38, count: 75), halfSizeChance: 0.5, noise: true)

    /// The PatchGD paper's variant: 512 x 512, 3-5 digits, sums 0-9, factors 1-9 weighted 5,4,3,2,1,1,2,3,4, no noise.
    public static let patchgd = UltraMNISTRecipe(
        size: 512, minDigits: 3, maxDigits: 5, classes: 10, minScale: 1, maxScale: 9,
        scaleWeights: vShape(descendingFrom: 5, count: 9), halfSizeChance: 0.5, noise: false)

    /// Presets by name.
    public static let presets: [String: UltraMNISTRecipe] = ["kaggle": kaggle, "patchgd": patchgd]

    public init(size: Int, minDigits: Int, maxDigits: Int, classes: Int, minScale: Int, maxScale: Int,
                scaleWeights: [Double], halfSizeChance: Double, noise: Bool) {
        self.size = size
        self.minDigits = minDigits
        self.maxDigits = maxDigits
        self.classes = classes
        self.minScale = minScale
        self.maxScale = maxScale
        self.scaleWeights = scaleWeights
        self.halfSizeChance = halfSizeChance
        self.noise = noise
    }

    /// V-shaped weights: `top, top-1, ..., 1` then `1, 2, ...` up to `count` entries.
    ///
    /// Kaggle: top 38 over 75 factors gives 38...1 for factors 1-38 and 1...37 for 39-75;
    /// PatchGD: top 5 over 9 factors gives 5,4,3,2,1,1,2,3,4.
    public static func vShape(descendingFrom top: Int, count: Int) -> [Double] {
        (0 ..< count).map { i in i < top ? Double(top - i) : Double(i - top + 1) }
    }

    /// Checks that the recipe can be generated; returns the problem, or nil.
    public func problem() -> String? {
        if size < 28 { return "image size \(size) is smaller than one MNIST digit (28)" }
        if minDigits < 1 || maxDigits < minDigits { return "digits must be a range like 3...5, got \(minDigits)...\(maxDigits)" }
        if classes < 1 || classes > 9 * maxDigits + 1 { return "classes must be 1...\(9 * maxDigits + 1) for up to \(maxDigits) digits, got \(classes)" }
        if minScale < 1 || maxScale < minScale { return "scales must be a range like 1...75, got \(minScale)...\(maxScale)" }
        if scaleWeights.count != maxScale - minScale + 1 { return "need one scale weight per factor \(minScale)...\(maxScale), got \(scaleWeights.count)" }
        if 28 * maxScale > size { return "the largest digit (28 x \(maxScale) = \(28 * maxScale) px) does not fit in a \(size) px image; lower --scale or raise --size" }
        // Large digits that do not fit beside the others are redrawn at another scale; only refuse when even the smallest cannot fit.
        let smallest = 28 * minScale
        if maxDigits * smallest * smallest > size * size / 2 { return "\(maxDigits) digits of \(smallest) px cannot be placed without overlap in \(size) px images; lower --scale or --digits" }
        for label in 0 ..< classes where Multisets.count(sum: label, minDigits: minDigits, maxDigits: maxDigits) == 0 {
            return "no \(minDigits)...\(maxDigits) digits sum to \(label); lower --classes"
        }
        return nil
    }
}

/// The sorted multisets of digits 0...9 of a given length and sum (the recipe picks uniformly among them).
public enum Multisets {
    /// All non-decreasing digit sequences of `length` digits summing to `sum`.
    public static func all(length: Int, sum: Int) -> [[Int]] {
        var result: [[Int]] = []
        var current: [Int] = []
        func extend(from low: Int, remaining: Int, left: Int) {
            if left == 0 {
                if remaining == 0 { result.append(current) }
                return
            }
            guard low <= 9, remaining >= low * left, remaining <= 9 * left else { return }
            for d in low ... min(9, remaining) {
                current.append(d)
                extend(from: d, remaining: remaining - d, left: left - 1)
                current.removeLast()
            }
        }
        extend(from: 0, remaining: sum, left: length)
        return result
    }

    /// How many multisets of `minDigits...maxDigits` digits sum to `sum`.
    public static func count(sum: Int, minDigits: Int, maxDigits: Int) -> Int {
        (minDigits ... maxDigits).reduce(0) { $0 + all(length: $1, sum: sum).count }
    }
}
