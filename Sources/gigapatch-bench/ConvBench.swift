import ArgumentParser
import Foundation
import NN
import Seeded

/// `gigapatch-bench conv ...`: one convolution layer's forward and backward, by each algorithm that applies.
struct ConvBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conv", abstract: "Time one convolution's forward and backward, Winograd against unrolled (im2col + GEMM), and in bf16 oneDNN where installed; a JSON line per algorithm.")
    @Option(name: .customLong("in"), help: "Input channels.") var inChannels: Int = 64
    @Option(name: .customLong("out"), help: "Output channels.") var outChannels: Int = 64
    @Option(help: "Input side in pixels.") var size: Int = 32
    @Option(help: "Batch size.") var batch: Int = 16
    @Option(help: "Kernel side.") var kernel: Int = 3
    @Option(help: "Stride.") var stride: Int = 1
    @Option(help: "Timed repetitions.") var steps: Int = 20
    @Option(help: "Threads; default: cores.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Matrix products: fp32 or bf16.") var precision: Precision = .fp32

    func run() throws {
        BLAS.configure()
        Parallel.threads = threads
        var rng = SplitMix64(seed: 5)
        let x = Tensor(shape: [batch, inChannels, size, size],
                       values: (0 ..< batch * inChannels * size * size).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let resolved = BFloat16.resolve(precision).precision
        // oneDNN (bf16 only, where installed; with the conversions from and to float32 NCHW), then the own kernels.
        for algorithm in (resolved == .bf16 && OneDNN.isAvailable ? ["onednn"] : []) + ["winograd", "unrolled"] {
            let store = ParameterStore()
            let conv = Conv2d(store, "conv", in: inChannels, out: outChannels, kernel: kernel, stride: stride, padding: kernel / 2, bias: false)
            conv.winograd = algorithm == "winograd" ? .always : .never
            conv.oneDNN = algorithm == "onednn"
            store.finalize(seed: 1)
            let ctx = Context(training: true, precision: resolved)
            let (ho, wo) = conv.outputSize(h: size, w: size)
            let dy = Tensor(shape: [batch, outChannels, ho, wo], values: (0 ..< batch * outChannels * ho * wo).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            var forward = 0.0, backward = 0.0
            for step in -2 ..< steps {   // two warm-up repetitions
                let t0 = Date()
                _ = conv.forward(x, ctx)
                let t1 = Date()
                _ = conv.backward(dy, ctx)
                if step >= 0 {
                    forward += t1.timeIntervalSince(t0)
                    backward += Date().timeIntervalSince(t1)
                }
            }
            let flops = 2.0 * Double(batch * outChannels * ho * wo * inChannels * kernel * kernel)
            let line: [String: Any] = [
                "algorithm": conv.oneDNNImplementation.map { "onednn \($0)" } ?? (conv.usesWinograd(h: size, w: size) ? "winograd" : "unrolled"),
                "in": inChannels, "out": outChannels, "size": size, "batch": batch, "kernel": kernel, "stride": stride, "threads": threads,
                "precision": ctx.precision.rawValue, "forward_ms": forward / Double(steps) * 1000, "backward_ms": backward / Double(steps) * 1000,
                "forward_gflops_equivalent": flops * Double(steps) / forward / 1e9,
                "backward_gflops_equivalent": 2 * flops * Double(steps) / backward / 1e9,
            ]
            print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
