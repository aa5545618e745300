import Foundation
import NN
import PatchIndex
import TestSupport
import Testing
@testable import PatchGD

struct MetricsTests {
    /// Quadratic weighted kappa against values worked out by hand.
    @Test func quadraticWeightedKappaHandComputed() {
        // Perfect agreement.
        #expect(ClassificationMetrics(actual: [0, 1, 2, 2], predicted: [0, 1, 2, 2], classes: 3).kappa == 1)
        // 3 classes, actual [0,1,2], predicted [0,2,2]: O has (0,0),(1,2),(2,2); W = [[0,.25,1],[.25,0,.25],[1,.25,0]].
        // sum W*O = 0.25. Actual histogram (1,1,1), predicted (1,0,2), N = 3: E[i][j] = a_i p_j / 3,
        // sum W*E = (1/3)(W00*1 + W01*0 + W02*2 + W10*1 + W11*0 + W12*2 + W20*1 + W21*0 + W22*2) = (1/3)(2 + 0.25 + 0.5 + 1) = 1.25.
        // kappa = 1 - 0.25 / 1.25 = 0.8.
        let m = ClassificationMetrics(actual: [0, 1, 2], predicted: [0, 2, 2], classes: 3)
        #expect(abs(m.kappa - 0.8) < 1e-12)
        #expect(abs(m.accuracy - 2.0 / 3) < 1e-12)
        #expect(m.confusion == [[1, 0, 0], [0, 0, 1], [0, 0, 1]])
        // Complete reversal on two classes: O = [[0,1],[1,0]], W off-diagonal 1, E = [[.5,.5],[.5,.5]]: kappa = 1 - 2/1 = -1.
        #expect(abs(ClassificationMetrics(actual: [0, 1], predicted: [1, 0], classes: 2).kappa + 1) < 1e-12)
        // Constant prediction: O = [[1,0],[1,0]] (both predicted 0), E = O here, kappa = 0.
        #expect(abs(ClassificationMetrics(actual: [0, 1], predicted: [0, 0], classes: 2).kappa) < 1e-12)
    }

    @Test func ordinalProbabilitiesAreADistribution() {
        let logits = Tensor(shape: [2, 3], values: [3, 1, -2, -1, 0.5, 2])   // second row's bins are not monotone
        let p = LossKind.ordinal.probabilities(logits)
        for row in p {
            #expect(row.count == 4 && row.allSatisfy { $0 >= 0 } && abs(row.reduce(0, +) - 1) < 1e-12)
        }
        #expect(LossKind.ordinal.predictions(logits) == [2, 2])
        #expect(LossKind.ce.predictions(Tensor(shape: [1, 3], values: [0, 2, 1])) == [1])
    }
}

struct AugmentationTests {
    /// Flips and quarter turns are the square's symmetries: four turns are the identity, turns compose, a flip is an involution.
    @Test func geometricAugmentationsAreSymmetriesOfTheSquare() {
        let p = 5
        let rgb = (0 ..< 3 * p * p).map { UInt8($0 % 251) }
        func run(_ a: PatchAugmentation, _ input: [UInt8]) -> [UInt8] {
            var out = [Float](repeating: 0, count: 3 * p * p)
            input.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { a.apply(rgb: src, p: p, into: $0.baseAddress!) } }
            // back to interleaved bytes
            return (0 ..< p * p).flatMap { i in (0 ..< 3).map { c in UInt8((out[c * p * p + i] * 255).rounded()) } }
        }
        #expect(run(PatchAugmentation(), rgb) == rgb)
        let once = run(PatchAugmentation(quarterTurns: 1), rgb)
        #expect(once != rgb)
        #expect(run(PatchAugmentation(quarterTurns: 1), run(PatchAugmentation(quarterTurns: 1), once)) == run(PatchAugmentation(quarterTurns: 3), rgb))
        #expect(run(PatchAugmentation(quarterTurns: 1), run(PatchAugmentation(quarterTurns: 3), rgb)) == rgb)
        #expect(run(PatchAugmentation(flip: true), run(PatchAugmentation(flip: true), rgb)) == rgb)
        // A quarter turn counter-clockwise moves the top-right pixel to the top-left.
        #expect(Array(once[0 ..< 3]) == Array(rgb[3 * (p - 1) ..< 3 * p]))
        // The same seed draws the same augmentation; colour jitter stays within its range.
        let s = AugmentationSettings(colorJitter: 0.3)
        #expect(s.draw(seed: 9) == s.draw(seed: 9))
        let drawn = (0 ..< 50).map { s.draw(seed: UInt64($0)) }
        #expect(drawn.allSatisfy { (0.7 ... 1.3).contains($0.brightness) && (0.7 ... 1.3).contains($0.saturation) })
        #expect(Set(drawn.map(\.quarterTurns)).count == 4)
    }
}

struct DatasetTests {
    /// The grid is the tissue's bounding box; beyond --max-grid it is centre-cropped; absent cells are not in the grid.
    @Test func gridsFollowTissueAndAreCroppedToMaxGrid() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        let tiling = try index.tilingID(datasetID: dataset, spec: TilingSpec(patchSize: 16, stride: 16, level: 0, targetMPP: nil, minTissue: 0,
                                                                                tissueMethod: "none", paramsJSON: "{}"))
        guard case .process(let slideID, _) = try index.begin(datasetID: dataset, tilingID: tiling, file: SlideFile(key: "a", path: "/x/a.tiff", size: 1, mtime: 0), retryFailed: false) else {
            Issue.record("slide not started"); return
        }
        // Tissue at rows 2...7, cols 3...5 with a hole at (4, 4).
        var patches: [PatchCell] = []
        for r in 2 ... 7 { for c in 3 ... 5 where !(r == 4 && c == 4) {
            patches.append(PatchCell(level0X: c * 16, level0Y: r * 16, gridRow: r, gridCol: c, tissueFraction: 1))
        } }
        try index.finish(slideID: slideID, tilingID: tiling, metadata: SlideMetadata(vendor: nil, width: 160, height: 160, levelCount: 1, mppX: nil, mppY: nil, mppSource: "unknown", quickHash: nil),
                         grid: GridInfo(rows: 10, cols: 10, readLevel: 0, readSize: 16), cells: patches)
        let full = try PatchDataset.load(index: index, dataset: nil, tilingID: nil, maxGrid: 64).images[0]
        #expect(full.grid.rows == 6 && full.grid.cols == 3 && full.rowOffset == 2 && full.colOffset == 3)
        #expect(full.grid.cells.count == 17 && !full.grid.cells.contains(2 * 3 + 1))   // (4,4) -> (2,1) absent
        #expect(full.locations(of: [0])[0].region.level0X == 48 && full.locations(of: [0])[0].region.level0Y == 32)
        let cropped = try PatchDataset.load(index: index, dataset: "d", tilingID: tiling, maxGrid: 4)
        let image = cropped.images[0]
        #expect(image.grid.rows == 4 && image.grid.cols == 3 && image.rowOffset == 3)   // rows 3...6 kept
        #expect(image.croppedPatches == 6 && cropped.notes.count == 1)
        // Cell (r, c) of Z is grid cell (rowOffset + r, colOffset + c): check every location.
        for (cell, location) in zip(image.grid.cells, image.locations) {
            #expect(location.region.level0Y == (image.rowOffset + cell / 3) * 16 && location.region.level0X == (image.colOffset + cell % 3) * 16)
        }
    }
}
