import Seeded

/// One digit placed in an image: its value, which MNIST image, its scale and its box (level-0 pixels).
public struct DigitPlacement: Sendable, Equatable, Codable {
    public var value: Int
    /// Index of the MNIST image in its file (train file for training images, test file for val/test).
    public var mnistIndex: Int
    /// Scale factor; the side is 28 x scale, or 14 for a half-size factor-1 digit.
    public var scale: Int
    public var side: Int
    public var x: Int
    public var y: Int

    /// Whether this box and `other` share any pixel.
    public func overlaps(_ other: DigitPlacement) -> Bool {
        x < other.x + other.side && other.x < x + side && y < other.y + other.side && other.y < y + side
    }
}

/// Everything needed to render one UltraMNIST image, tile by tile, without holding it.
public struct ImageLayout: Sendable, Equatable {
    public var id: String
    public var split: String
    public var label: Int
    public var size: Int
    public var digits: [DigitPlacement]
    public var noise: NoiseField?
    /// Scale redraws needed because a digit could not be placed without overlap (0 almost always).
    public var redraws: Int
}

/// Draws image layouts following a recipe, from a per-image random stream.
public struct LayoutGenerator: Sendable {
    public let recipe: UltraMNISTRecipe
    /// For each label: the multisets (of every allowed length) whose digits sum to it.
    private let multisetsByLabel: [[[Int]]]
    /// MNIST image indices of each digit in the pool this split draws from.
    private let pool: [[Int]]

    /// Position draws per digit before its scale is redrawn (only tight recipes ever need it).
    public static let positionAttempts = 2000
    /// Scale redraws of one digit before the whole layout starts again.
    public static let scaleRedraws = 20

    public init(recipe: UltraMNISTRecipe, pool: [[Int]]) {
        self.recipe = recipe
        self.pool = pool
        multisetsByLabel = (0 ..< recipe.classes).map { label in
            (recipe.minDigits ... recipe.maxDigits).flatMap { Multisets.all(length: $0, sum: label) }
        }
    }

    /// Draws a scale factor from the recipe's V-shaped weights.
    public func drawScale(using rng: inout SplitMix64) -> Int {
        recipe.minScale + rng.weightedIndex(recipe.scaleWeights)
    }

    /// The layout of one image of class `label`.
    public func layout(id: String, split: String, label: Int, using rng: inout SplitMix64) -> ImageLayout {
        let choices = multisetsByLabel[label]
        var values = choices[Int.random(in: 0 ..< choices.count, using: &rng)]
        values.shuffle(using: &rng)
        var placed: [DigitPlacement] = []
        var redraws = 0
        // A digit that still does not fit after `scaleRedraws` scales (an earlier digit took the room: a 252 px digit
        // in a 256 px image) restarts the whole layout with fresh scales instead of looping forever.
        layout: while true {
            placed.removeAll()
            for value in values {
                let candidates = pool[value]
                let mnistIndex = candidates[Int.random(in: 0 ..< candidates.count, using: &rng)]
                var digitRedraws = 0
                placement: while true {
                    let scale = drawScale(using: &rng)
                    let side = scale == 1 && Double.random(in: 0 ..< 1, using: &rng) < recipe.halfSizeChance ? 14 : 28 * scale
                    for _ in 0 ..< Self.positionAttempts {
                        let digit = DigitPlacement(value: value, mnistIndex: mnistIndex, scale: scale, side: side,
                                                   x: Int.random(in: 0 ... recipe.size - side, using: &rng),
                                                   y: Int.random(in: 0 ... recipe.size - side, using: &rng))
                        if !placed.contains(where: { $0.overlaps(digit) }) {
                            placed.append(digit)
                            break placement
                        }
                    }
                    redraws += 1
                    digitRedraws += 1
                    if digitRedraws >= Self.scaleRedraws { continue layout }
                }
            }
            break layout
        }
        let noise = recipe.noise ? NoiseField.draw(size: recipe.size, using: &rng) : nil
        return ImageLayout(id: id, split: split, label: label, size: recipe.size, digits: placed, noise: noise, redraws: redraws)
    }
}
