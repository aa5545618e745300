import Foundation
import NN
import Seeded
import Testing
@testable import PatchGD

/// A toy setting: B images of small RGB patches on a grid, a tiny backbone and a head without dropout.
struct Toy {
    let grids: [PatchGrid]
    let pixels: [[Tensor]]          // per image, per cell (row-major), (3, P, P)
    let labels: [Int]
    let side = 16
    var requested: [[Int]] = []

    /// Image 0: a full rows x cols grid; image 1: the same grid with cell 4 absent (no tissue).
    init(seed: UInt64, rows: Int = 2, cols: Int = 3) {
        var rng = SplitMix64(seed: seed)
        grids = [PatchGrid(rows: rows, cols: cols), PatchGrid(rows: rows, cols: cols, cells: (0 ..< rows * cols).filter { $0 != 4 })]
        labels = [1, 2]
        let side = 16
        pixels = (0 ..< 2).map { _ in (0 ..< rows * cols).map { _ in Tensor(shape: [3, side, side], values: (0 ..< 3 * side * side).map { _ in Float.random(in: -1 ... 1, using: &rng) }) } }
    }

    func provider() -> PatchProvider {
        let pixels = self.pixels, side = self.side
        return { image, cells in
            let out = Tensor(shape: [cells.count, 3, side, side])
            for (i, cell) in cells.enumerated() { (out.pointer + i * 3 * side * side).update(from: pixels[image][cell].pointer, count: 3 * side * side) }
            return out
        }
    }

    static func models(seed: UInt64) -> (Model, Model) {
        (Model.backbone("tiny", outputs: 4, seed: seed)!, PatchGDHead.make(latent: 4, features: 4, classes: 3, dropout: 0, seed: seed + 1))
    }
}

struct PatchGDTests {
    @Test func samplingSizesAndSweeps() {
        var c = PatchGDConfig(sampling: 1.0 / 8)
        #expect(c.k(cells: 256) == 32 && c.iterations(cells: 256) == 8)
        #expect(c.k(cells: 10) == 2 && c.iterations(cells: 10) == 5)
        c.sampling = 0.25   // changing s changes the number of inner iterations (the reference forgets to)
        #expect(c.iterations(cells: 256) == 4)
        c.patchesPerStep = 64
        #expect(c.k(cells: 1024) == 64 && c.iterations(cells: 1024) == 16 && c.k(cells: 10) == 10)
        #expect(PatchGD.group(2, of: [5, 1, 4, 0, 3, 2, 6], k: 3, wrap: false) == [6])
        #expect(PatchGD.group(3, of: [5, 1, 4, 0, 3, 2, 6], k: 3, wrap: false).isEmpty)
        #expect(PatchGD.group(3, of: [5, 1, 4, 0, 3, 2, 6], k: 3, wrap: true) == [4, 0, 3])
    }

    /// Fill chunks span images: every present cell once, in image then grid order, no chunk over the size.
    @Test func fillChunksSpanImages() {
        let grids = [PatchGrid(rows: 2, cols: 2), PatchGrid(rows: 2, cols: 2, cells: [0, 3]), PatchGrid(rows: 1, cols: 3)]
        let chunks = PatchGD.chunks(grids, size: 3)
        #expect(chunks.map { $0.reduce(0) { $0 + $1.cells.count } } == [3, 3, 3])
        #expect(chunks[1].map(\.image) == [0, 1] && chunks[1][0].cells == [3] && chunks[1][1].cells == [0, 3])
        let flat = chunks.flatMap { $0.flatMap { piece in piece.cells.map { (piece.image, $0) } } }
        #expect(flat.map(\.0) == [0, 0, 0, 0, 1, 1, 2, 2, 2] && flat.map(\.1) == [0, 1, 2, 3, 0, 3, 0, 1, 2])
        #expect(PatchGD.chunks(grids, size: 64).count == 1 && PatchGD.chunks([], size: 4).isEmpty)
    }

    /// Z's cell (row, col) is the patch at grid (row, col); absent cells stay zero.
    @Test func zCellsMatchGridCells() throws {
        let toy = Toy(seed: 1)
        let (backbone, head) = Toy.models(seed: 2)
        let gd = PatchGD(backbone: backbone, head: head, config: PatchGDConfig(sampling: 1),
                         backboneOptimizer: Optimizer(.sgd(), store: backbone.store, learningRate: 0),
                         headOptimizer: Optimizer(.sgd(), store: head.store, learningRate: 0))
        let z = try gd.fill(toy.grids, patches: toy.provider())
        #expect(z.shape == [2, 4, 2, 3])
        let single = backbone.forward(try toy.provider()(1, [5]), Context(training: false))   // image 1, row 1, col 2
        for ch in 0 ..< 4 { #expect(abs(z.pointer[((1 * 4 + ch) * 2 + 1) * 3 + 2] - single.pointer[ch]) < 1e-5) }
        for ch in 0 ..< 4 { #expect(z.pointer[((1 * 4 + ch) * 2 + 1) * 3 + 1] == 0) }   // cell 4 of image 1 is absent
    }

    /// With s = 1 and one inner iteration PatchGD's gradient is exactly the end-to-end gradient: every patch through the
    /// backbone in one training-mode batch, Z, head, cross-entropy, back-propagated straight through. (The layers
    /// themselves are checked by finite differences in NNTests; this checks PatchGD's fill, detached copy, scatter and
    /// gather of Z, epsilon and step order.)
    @Test func fullSamplingEqualsEndToEndGradient() throws {
        // 12 x 12 grids: the head's blocks see 12, 6, 3 and 2 cells a side, so no BatchNorm normalises over two lone values.
        let toy = Toy(seed: 3, rows: 12, cols: 12)
        let (backbone, head) = Toy.models(seed: 4)
        let provider = toy.provider()
        let start = (Array(backbone.store.values), Array(head.store.values), Array(backbone.store.buffers), Array(head.store.buffers))

        // End to end, by hand, with the patches in the order PatchGD will draw them (same seed), so float sums agree.
        var orderRNG = SplitMix64(seed: 5)
        let orders = toy.grids.map { $0.cells.shuffled(using: &orderRNG) }
        backbone.store.zeroGradients()
        head.store.zeroGradients()
        let ctx = Context(training: true)
        var inputs: [Tensor] = []
        for (b, cells) in orders.enumerated() { inputs.append(try provider(b, cells)) }
        let features = backbone.forward(PatchGD.concatenate(inputs), ctx)
        let z = Tensor(shape: [2, 4, 12, 12])
        var offset = 0
        for (b, cells) in orders.enumerated() { PatchGD.write(features, from: offset, into: z, image: b, cells: cells, grid: toy.grids[b]); offset += cells.count }
        let loss = CrossEntropy.compute(logits: head.forward(z, ctx), targets: toy.labels)
        let dz = head.backward(loss.gradient, ctx)
        let dFeatures = Tensor(shape: features.shape)
        offset = 0
        for (b, cells) in orders.enumerated() { PatchGD.read(dz, into: dFeatures, at: offset, image: b, cells: cells, grid: toy.grids[b]); offset += cells.count }
        backbone.backward(dFeatures, ctx)
        let expected = (Array(backbone.store.gradients), Array(head.store.gradients))

        // PatchGD with s = 1 from the same starting point; SGD with learning rate 1 makes the step minus the gradient.
        _ = backbone.store.values.update(fromContentsOf: start.0)
        _ = head.store.values.update(fromContentsOf: start.1)
        _ = backbone.store.buffers.update(fromContentsOf: start.2)
        _ = head.store.buffers.update(fromContentsOf: start.3)
        let gd = PatchGD(backbone: backbone, head: head, config: PatchGDConfig(sampling: 1),
                         backboneOptimizer: Optimizer(.sgd(), store: backbone.store, learningRate: 1),
                         headOptimizer: Optimizer(.sgd(), store: head.store, learningRate: 1))
        var rng = SplitMix64(seed: 5)
        let result = try gd.trainStep(toy.grids, labels: toy.labels, patches: provider, rng: &rng,
                                      loss: { CrossEntropy.compute(logits: $0, targets: $1) })
        #expect(result.innerIterations == 1 && result.optimizerSteps == 1)
        #expect(abs(result.loss - loss.loss) < 1e-5)
        let steps = (zip(start.0, backbone.store.values).map { $0 - $1 }, zip(start.1, head.store.values).map { $0 - $1 })
        let worstBackbone = zip(steps.0, expected.0).map { abs($0 - $1) }.max()!, scaleBackbone = expected.0.map(abs).max()!
        let worstHead = zip(steps.1, expected.1).map { abs($0 - $1) }.max()!, scaleHead = expected.1.map(abs).max()!
        #expect(scaleBackbone > 0 && worstBackbone / scaleBackbone < 1e-4, "backbone: \(worstBackbone) of \(scaleBackbone)")
        #expect(scaleHead > 0 && worstHead / scaleHead < 1e-4, "head: \(worstHead) of \(scaleHead)")
    }

    /// Accumulation takes one optimizer step per mini-batch; without it, one per inner iteration.
    /// Absent cells are never requested from the provider, and each iteration recomputes at most k patches per image.
    @Test func stepsRequestsAndLossDecrease() throws {
        let toy = Toy(seed: 7)
        let (backbone, head) = Toy.models(seed: 8)
        let log = RequestLog()
        let inner = toy.provider()
        let provider: PatchProvider = { image, cells in log.add(image, cells); return try inner(image, cells) }
        let gd = PatchGD(backbone: backbone, head: head, config: PatchGDConfig(sampling: 0.34),
                         backboneOptimizer: Optimizer(.adamW(), store: backbone.store, learningRate: 3e-3),
                         headOptimizer: Optimizer(.adamW(), store: head.store, learningRate: 3e-3))
        var rng = SplitMix64(seed: 9)
        var losses: [Float] = []
        for _ in 0 ..< 25 {
            let r = try gd.trainStep(toy.grids, labels: toy.labels, patches: provider, rng: &rng, loss: { CrossEntropy.compute(logits: $0, targets: $1) })
            #expect(r.innerIterations == 2 && r.optimizerSteps == 1)   // k = ceil(6 * 0.34) = 3 of the largest image's 6
            losses.append(r.loss)
        }
        #expect(losses.last! < losses.first! / 3, "losses \(losses.first!) -> \(losses.last!)")
        #expect(!log.cells(of: 1).contains(4))
        #expect(log.largestRecompute(k: 3))
        gd.config.accumulate = false
        let r = try gd.trainStep(toy.grids, labels: toy.labels, patches: provider, rng: &rng, loss: { CrossEntropy.compute(logits: $0, targets: $1) })
        #expect(r.optimizerSteps == 2)
        let logits = try gd.predict(toy.grids, patches: provider)
        #expect(logits.shape == [2, 3])
    }
}

/// Which cells the provider was asked for.
final class RequestLog: @unchecked Sendable {
    private let lock = NSLock()
    private var requests: [(Int, [Int])] = []
    func add(_ image: Int, _ cells: [Int]) { lock.withLock { requests.append((image, cells)) } }
    func cells(of image: Int) -> Set<Int> { lock.withLock { Set(requests.filter { $0.0 == image }.flatMap(\.1)) } }
    /// Requests of recomputation size (fewer than a whole image) never exceed k.
    func largestRecompute(k: Int) -> Bool { lock.withLock { requests.filter { $0.1.count < 5 }.allSatisfy { $0.1.count <= k } } }
}
