import ArgumentParser
import Foundation
import NN
import PatchGD
import Seeded
import SlideIO
import Stain

/// `gigapatch-bench patchgd`: one PatchGD training step on one large image; time and peak memory.
///
/// Patches come from a slide file through `PatchReader` (`--slide`, a grid of `--patch` squares at level 0) or are
/// generated (deterministic noise per cell, no I/O) to measure the compute alone.
struct PatchGDBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "patchgd",
        abstract: "Time a PatchGD training step on one image (batch 1) and report peak memory; one JSON line.")

    @Option(help: "Image side in pixels (generated patches).") var size: Int = 4096
    @Option(help: "Read patches from this slide (level 0) instead of generating them.") var slide: String?
    @Option(help: "Patch side in pixels.") var patch: Int = 128
    @Option(help: "Backbone.") var backbone: String = "resnet18"
    @Option(help: "Latent dimension.") var latent: Int = 256
    @Option(help: "Fixed patches per inner iteration (k).") var k: Int?
    @Option(help: "Sampling fraction s when --k is not given.") var sampling: Double = 1.0 / 8
    @Option(help: "Inner iterations (default: one sweep).") var innerIterations: Int?
    @Option(help: "Timed steps (after one warm-up step unless --no-warmup).") var steps: Int = 1
    @Flag(help: "Skip the warm-up step (memory runs).") var noWarmup = false
    @Option(help: "Threads; default: cores.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Matrix products: fp32 or bf16.") var precision: Precision = .fp32
    @Option(help: "With --slide: decoded patches cached (0: every read decodes, resamples and normalises again).") var cache: Int = 4096
    @Option(help: "With --slide: stain target (gigapatch-stain fit) applied to every patch read.") var stain: String?
    @Option(help: "With --slide: augmentation preset applied to every patch read: none, basic or he.") var augmentation: String = "none"

    func run() throws {
        BLAS.configure()
        Parallel.threads = threads
        guard let (net, head) = ModelFactory.patchGDModels(backbone: backbone, latent: latent, classes: 10, seed: 1) else {
            throw ValidationError("unknown backbone \(backbone); one of \(Model.backbones.joined(separator: ", "))")
        }
        var side = size
        var provider: PatchProvider
        if let slide {
            let opened = try Slide(path: slide)
            side = min(opened.dimensions.width, opened.dimensions.height)
            let normalizer = try stain.map { StainNormalizer(try StainTarget.load(path: $0)) }
            let reader = PatchReader(patchSize: patch, normalization: .imagenet, cacheCapacity: cache, stain: normalizer)
            let settings: AugmentationSettings
            switch augmentation {
            case "none": settings = .none
            case "basic", "he": settings = AugmentationPreset(rawValue: augmentation)!.settings
            default: throw ValidationError("--augmentation must be none, basic or he, not '\(augmentation)'")
            }
            let n = side / patch
            provider = { _, cells in
                try reader.read(cells.map { PatchLocation(path: slide, level0X: $0 % n * patch, level0Y: $0 / n * patch, level: 0, readSize: patch) },
                                augmentations: settings.isNone ? nil : cells.map { settings.draw(seed: UInt64($0)) })
            }
        } else {
            let p = patch
            provider = { _, cells in
                let out = Tensor(uninitialized: [cells.count, 3, p, p])
                let po = out.pointer
                Parallel.forRange(cells.count, grain: 1) { r in
                    for i in r {
                        var rng = SplitMix64(seed: UInt64(cells[i]))
                        for j in 0 ..< 3 * p * p { po[i * 3 * p * p + j] = Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }
                    }
                }
                return out
            }
        }
        let n = side / patch
        let grid = PatchGrid(rows: n, cols: n)
        let config = PatchGDConfig(sampling: sampling, patchesPerStep: k, innerIterations: innerIterations)
        let gd = PatchGD(backbone: net, head: head, config: config,
                         backboneOptimizer: Optimizer(.adam(), store: net.store, learningRate: 1e-4),
                         headOptimizer: Optimizer(.adam(), store: head.store, learningRate: 1e-4))
        gd.precision = BFloat16.resolve(precision).precision
        var rng = SplitMix64(seed: 5)
        let loss = { (logits: Tensor, targets: [Int]) in CrossEntropy.compute(logits: logits, targets: targets) }
        if !noWarmup { _ = try gd.trainStep([grid], labels: [3], patches: provider, rng: &rng, loss: loss) }
        let start = Date()
        var iterations = 0
        for _ in 0 ..< steps { iterations = try gd.trainStep([grid], labels: [3], patches: provider, rng: &rng, loss: loss).innerIterations }
        let seconds = Date().timeIntervalSince(start) / Double(steps)
        let line: [String: Any] = ["bench": "patchgd", "precision": gd.precision.rawValue, "backbone": backbone, "size": n * patch, "patch": patch, "grid": n,
                                   "k": config.k(cells: n * n), "inner_iterations": iterations, "threads": threads,
                                   "source": slide == nil ? "generated" : "slide", "seconds_per_step": seconds,
                                   "patches_per_s": Double(n * n) / seconds, "cache": slide == nil ? 0 : cache,
                                   "stain": stain.flatMap { try? StainTarget.load(path: $0).method.rawValue } ?? "none", "augmentation": augmentation,
                                   "z_mb": Double(latent * n * n * 4) / 1_048_576, "peak_rss_mb": peakResidentMiB()]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
