import ArgumentParser
import Foundation
import NN
import PatchGD
import Seeded

/// `gigapatch-bench activations`: the most tensor memory alive at once during one training step (activations kept
/// for backward, transients, Z and the head's; not parameters or optimizer state), for GD on an image downscaled to
/// one patch's size and for PatchGD recomputing k patches per image, on generated inputs. One JSON line; run each
/// method in its own process (the pool's count is process-wide).
struct ActivationsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activations",
        abstract: "Peak tensor memory of one GD or PatchGD training step (generated inputs); one JSON line.")

    @Option(help: "gd (the image downscaled to --patch px) or patchgd (--image px images of --patch px patches).") var method: String
    @Option(help: "Backbone.") var backbone: String = "tiny"
    @Option(help: "Images per mini-batch.") var batch: Int = 16
    @Option(help: "PatchGD: image side in pixels.") var image: Int = 128
    @Option(help: "Patch side, and GD's image side.") var patch: Int = 64
    @Option(help: "PatchGD: patches recomputed with gradients per image per inner iteration.") var k: Int = 1
    @Option(help: "PatchGD: latent channels and head features.") var latent: Int = 64
    @Option(help: "PatchGD: patches per backbone call in the fill pass (default: batch x k, the recomputation's).") var fillChunk: Int?

    func run() throws {
        BLAS.configure()
        let p = patch
        let generated = { (n: Int, seed: UInt64) -> Tensor in
            let t = Tensor(uninitialized: [n, 3, p, p])
            var rng = SplitMix64(seed: seed)
            for i in 0 ..< t.count { t.pointer[i] = Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }
            return t
        }
        let labels = (0 ..< batch).map { $0 % 10 }
        let loss = { (logits: Tensor, targets: [Int]) in CrossEntropy.compute(logits: logits, targets: targets) }
        let pool = StoragePool.shared
        var peak = 0, before = 0
        switch method {
        case "gd":
            guard let model = Model.backbone(backbone, outputs: 10, seed: 1) else { throw ValidationError("unknown backbone \(backbone)") }
            let x = generated(batch, 1)
            before = pool.liveBytes
            pool.resetPeak()
            let ctx = Context(training: true)
            let logits = model.forward(x, ctx)
            model.backward(loss(logits, labels).gradient, ctx)
            peak = pool.peakLiveBytes
        case "patchgd":
            guard let (net, head) = ModelFactory.patchGDModels(backbone: backbone, latent: latent, headFeatures: latent, classes: 10, seed: 1) else {
                throw ValidationError("unknown backbone \(backbone)")
            }
            let core = PatchGD(backbone: net, head: head, config: PatchGDConfig(patchesPerStep: k),
                               backboneOptimizer: Optimizer(.adam(), store: net.store, learningRate: 1e-4),
                               headOptimizer: Optimizer(.adam(), store: head.store, learningRate: 1e-4))
            core.fillChunk = fillChunk ?? batch * k
            let n = image / patch
            let grids = (0 ..< batch).map { _ in PatchGrid(rows: n, cols: n) }
            var rng = SplitMix64(seed: 3)
            before = pool.liveBytes
            pool.resetPeak()
            _ = try core.trainStep(grids, labels: labels, patches: { b, cells in generated(cells.count, UInt64(b * 1000 + (cells.first ?? 0))) },
                                   rng: &rng, loss: loss)
            peak = pool.peakLiveBytes
        default: throw ValidationError("--method must be gd or patchgd, not '\(method)'")
        }
        let line: [String: Any] = ["bench": "activations", "method": method, "backbone": backbone, "batch": batch, "patch": patch,
                                   "image": method == "gd" ? patch : image, "k": method == "gd" ? 0 : k,
                                   "fill_chunk": method == "gd" ? 0 : (fillChunk ?? batch * k),
                                   "peak_tensor_mb": Double(peak - before) / 1_048_576]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
