import ArgumentParser
import Foundation
import GigapatchCLI
import NN
import PatchGD
import Seeded

/// `gigapatch-bench train ...`: a training step is forward, backward and an AdamW update.
struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Time training steps (forward, backward, AdamW).")
    @OptionGroup var options: EngineOptions
    func run() throws { try options.bench(mode: "train") }
}

/// `gigapatch-bench infer ...`: forward passes in evaluation mode.
struct InferBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "infer", abstract: "Time inference (forward in evaluation mode).")
    @OptionGroup var options: EngineOptions
    func run() throws { try options.bench(mode: "infer") }
}

/// Options shared by `train` and `infer`, and the timing loop: warm-up steps, then timed ones, one JSON line.
struct EngineOptions: ParsableArguments {
    @Option(help: "Backbone: \(Model.backbones.joined(separator: ", ")).") var model: String = "resnet18"
    @Option(help: "Image side in pixels.") var size: Int = 128
    @Option(help: "Batch size.") var batch: Int = 16
    @Option(help: "Timed steps.") var steps: Int = 20
    @Option(help: "Warm-up steps (not timed).") var warmup: Int = 3
    @Option(help: "Output size (classes).") var outputs: Int = 1000
    @Option(help: "Threads; default: cores.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Matrix products: fp32, or bf16 (autocast: bfloat16 operands, float32 sums).") var precision: Precision = .fp32

    /// Times `steps` training steps (forward, cross-entropy, backward, AdamW) or inference passes on random images.
    func bench(mode: String) throws {
        guard let net = Model.backbone(model, outputs: outputs, seed: 1) else { throw ValidationError("unknown model \(model)") }
        BLAS.configure()
        Parallel.threads = threads
        var rng = SplitMix64(seed: 3)
        let x = Tensor(shape: [batch, 3, size, size], values: (0 ..< batch * 3 * size * size).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let targets = (0 ..< batch).map { $0 % outputs }
        let optimizer = Optimizer(.adamW(), store: net.store, learningRate: 1e-4, weightDecay: 1e-2)
        let (resolved, note) = BFloat16.resolve(precision)
        if let note { FileHandle.standardError.write(Data((note + "\n").utf8)) }
        let ctx = Context(training: mode == "train", precision: resolved)
        func step() {
            if mode == "train" {
                net.store.zeroGradients()
                let loss = CrossEntropy.compute(logits: net.forward(x, ctx), targets: targets)
                net.backward(loss.gradient, ctx)
                optimizer.step()
            } else {
                _ = net.forward(x, ctx)
            }
        }
        for _ in 0 ..< warmup { step() }
        let start = Date()
        for _ in 0 ..< steps { step() }
        let seconds = Date().timeIntervalSince(start)
        let line: [String: Any] = ["model": model, "mode": mode, "size": size, "batch": batch, "threads": threads, "steps": steps,
                                   "images_per_s": Double(batch * steps) / seconds, "seconds_per_step": seconds / Double(steps),
                                   "peak_rss_mb": peakResidentMiB(), "blas_core": BLAS.coreName,
                                   "precision": resolved.rawValue, "bf16_convolutions": resolved == .bf16 ? OneDNN.summary : "none"]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
