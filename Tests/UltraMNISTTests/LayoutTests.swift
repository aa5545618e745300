import Foundation
import Seeded
import TestSupport
import Testing
@testable import UltraMNIST

struct LayoutTests {
    static func fakeSets() -> (MNISTSet, MNISTSet) {
        let a = FakeMNIST.idx(count: 400), b = FakeMNIST.idx(count: 200)
        return (MNISTSet(images: Array(a.images.dropFirst(16)), labels: Array(a.labels.dropFirst(8))),
                MNISTSet(images: Array(b.images.dropFirst(16)), labels: Array(b.labels.dropFirst(8))))
    }

    @Test func multisetsAreSortedAndSumRight() {
        #expect(Multisets.all(length: 3, sum: 0) == [[0, 0, 0]])
        #expect(Multisets.all(length: 3, sum: 27) == [[9, 9, 9]])
        #expect(Multisets.all(length: 3, sum: 2) == [[0, 0, 2], [0, 1, 1]])
        for length in 3 ... 5 {
            for sum in 0 ... 27 {
                let sets = Multisets.all(length: length, sum: sum)
                #expect(sets.allSatisfy { $0.reduce(0, +) == sum && $0 == $0.sorted() && $0.count == length })
                #expect(Set(sets).count == sets.count)
            }
        }
        #expect((0 ..< 28).allSatisfy { Multisets.count(sum: $0, minDigits: 3, maxDigits: 5) > 0 })
    }

    @Test func presetsMatchThePublishedRecipes() {
        let k = UltraMNISTRecipe.kaggle, p = UltraMNISTRecipe.patchgd
        #expect(k.size == 4000 && k.classes == 28 && k.minScale == 1 && k.maxScale == 75 && k.noise)
        #expect(Array(k.scaleWeights.prefix(3)) == [38, 37, 36] && k.scaleWeights[37] == 1 && k.scaleWeights[38] == 1 && k.scaleWeights.last == 37)
        #expect(p.size == 512 && p.classes == 10 && p.maxScale == 9 && !p.noise)
        #expect(p.scaleWeights == [5, 4, 3, 2, 1, 1, 2, 3, 4])
        #expect(k.problem() == nil && p.problem() == nil)
        var bad = p
        bad.maxScale = 20
        bad.scaleWeights = UltraMNISTRecipe.vShape(descendingFrom: 10, count: 20)
        #expect(bad.problem()?.contains("does not fit") == true)
    }

    /// Every image: label = digit sum, 3-5 digits, boxes inside the image and pairwise disjoint; classes balanced.
    @Test(arguments: ["kaggle", "patchgd"])
    func layoutsFollowTheRecipe(preset: String) throws {
        let (train, test) = Self.fakeSets()
        let recipe = try #require(UltraMNISTRecipe.presets[preset])
        let job = UltraMNISTJob(recipe: recipe, counts: SplitCounts(train: 12, val: 2, test: 2), seed: 7)
        let layouts = try UltraMNISTGenerator.layouts(job: job, train: train, test: test)
        #expect(layouts.count == 16 * recipe.classes)
        for layout in layouts {
            #expect(layout.digits.map(\.value).reduce(0, +) == layout.label)
            #expect((3 ... 5).contains(layout.digits.count))
            for (i, d) in layout.digits.enumerated() {
                #expect(d.x >= 0 && d.y >= 0 && d.x + d.side <= recipe.size && d.y + d.side <= recipe.size)
                #expect(d.side == 28 * d.scale || (d.scale == 1 && d.side == 14))
                for other in layout.digits[(i + 1)...] { #expect(!d.overlaps(other), "\(layout.id) boxes overlap") }
            }
            #expect((layout.noise != nil) == recipe.noise)
        }
        for split in ["train", "val", "test"] {
            var perClass = [Int](repeating: 0, count: recipe.classes)
            for layout in layouts where layout.split == split { perClass[layout.label] += 1 }
            #expect(Set(perClass).count == 1, "\(split) classes unbalanced: \(perClass)")
        }
    }

    /// Train digits come from the training file; val and test from disjoint halves of the test file.
    @Test func splitDigitSetsAreDisjoint() throws {
        let (train, test) = Self.fakeSets()
        let job = UltraMNISTJob(recipe: .patchgd, counts: SplitCounts(train: 20, val: 20, test: 20), seed: 3)
        let layouts = try UltraMNISTGenerator.layouts(job: job, train: train, test: test)
        let indices = { (split: String) in Set(layouts.filter { $0.split == split }.flatMap { $0.digits.map(\.mnistIndex) }) }
        let (val, tst) = (indices("val"), indices("test"))
        #expect(val.isDisjoint(with: tst))
        #expect(val.allSatisfy { $0 < test.count / 2 } && tst.allSatisfy { $0 >= test.count / 2 })
        #expect(indices("train").allSatisfy { $0 < train.count })
        for layout in layouts {
            let set = layout.split == "train" ? train : test
            #expect(layout.digits.allSatisfy { Int(set.labels[$0.mnistIndex]) == $0.value })
        }
    }

    /// The scale draws follow the V-shaped weights: chi-square over 200k draws with a fixed seed.
    @Test(arguments: ["kaggle", "patchgd"])
    func scaleHistogramIsVShaped(preset: String) throws {
        let recipe = try #require(UltraMNISTRecipe.presets[preset])
        let generator = LayoutGenerator(recipe: recipe, pool: Array(repeating: [0], count: 10))
        var rng = SplitMix64(seed: 11)
        let n = 200_000
        var counts = [Int](repeating: 0, count: recipe.scaleWeights.count)
        for _ in 0 ..< n { counts[generator.drawScale(using: &rng) - recipe.minScale] += 1 }
        let total = recipe.scaleWeights.reduce(0, +)
        var chi2 = 0.0
        for (i, w) in recipe.scaleWeights.enumerated() {
            let expected = Double(n) * w / total
            chi2 += (Double(counts[i]) - expected) * (Double(counts[i]) - expected) / expected
        }
        // 99.9% quantile of chi-square: df 74 -> 117.8, df 8 -> 26.1.
        let critical = recipe.scaleWeights.count == 75 ? 117.8 : 26.1
        #expect(chi2 < critical, "chi-square \(chi2)")
        // The V: both ends clearly more likely than the middle.
        let middle = counts[counts.count / 2]
        #expect(counts.first! > 3 * middle && counts.last! > 3 * middle)
    }

    /// A recipe where one digit can nearly fill the image (252 px in 256 px) still lays out every image without overlap:
    /// the layout starts again with fresh scales instead of redrawing the blocked digit forever.
    @Test func tightRecipeTerminates() {
        var recipe = UltraMNISTRecipe.patchgd
        recipe.size = 256
        let generator = LayoutGenerator(recipe: recipe, pool: (0 ..< 10).map { [$0] })
        var rng = SplitMix64(seed: 5)
        for i in 0 ..< 200 {
            let layout = generator.layout(id: "\(i)", split: "train", label: i % 10, using: &rng)
            #expect(layout.digits.reduce(0) { $0 + $1.value } == i % 10)
            for (a, d) in layout.digits.enumerated() { #expect(!layout.digits[(a + 1)...].contains { $0.overlaps(d) }) }
        }
    }
}
