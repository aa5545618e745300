import ArgumentParser
import Foundation
import NN
import Seeded

/// `gigapatch-bench gemm`: one core's matrix products in bf16 (Gigapatch's AVX512-BF16 kernel) against float32
/// (OpenBLAS sgemm), on the shapes of resnet18's convolutions at 128 px, batch 16; a JSON line per shape.
struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "Time single-threaded bf16 and fp32 matrix products on convolution shapes; a JSON line per shape.")
    @Option(help: "Floating-point operations per timed measurement (per shape and precision).") var work: Double = 2e10

    /// (what, m, n, k, transA, transB): forward (weights x unrolled input), input gradient (weightsᵀ x dY) and weight
    /// gradient (dY x unrolledᵀ) of one image, and Winograd's per-position products on a 128-tile block.
    static let shapes: [(String, Int, Int, Int, Bool, Bool)] = [
        ("layer1 3x3 forward", 64, 1024, 576, false, false),
        ("layer1 3x3 input gradient", 576, 1024, 64, true, false),
        ("layer1 3x3 weight gradient", 64, 576, 1024, false, true),
        ("layer3 3x3 forward, batch", 256, 1024, 2304, false, false),
        ("layer4 3x3 forward, batch", 512, 256, 4608, false, false),
        ("layer4 3x3 input gradient, batch", 4608, 256, 512, true, false),
        ("layer4 3x3 weight gradient, batch", 512, 4608, 256, false, true),
        ("winograd product, 64 channels", 64, 128, 64, false, false),
        ("winograd product, 256 channels", 256, 128, 256, false, false),
    ]

    func run() throws {
        BLAS.configure()
        var rng = SplitMix64(seed: 4)
        for (what, m, n, k, ta, tb) in Self.shapes {
            let a = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            let b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &rng) }
            var c = [Float](repeating: 0, count: m * n)
            let repetitions = max(3, Int(work / (2 * Double(m * n * k))))
            func time(_ product: BLAS.Product) -> Double {
                a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
                    let (x, y, z) = (pa.baseAddress!, pb.baseAddress!, pc.baseAddress!)
                    product(ta, tb, m, n, k, 1, x, ta ? m : k, y, tb ? k : n, 0, z, n)   // warm-up
                    let start = Date()
                    for _ in 0 ..< repetitions { product(ta, tb, m, n, k, 1, x, ta ? m : k, y, tb ? k : n, 0, z, n) }
                    return 2 * Double(m * n * k * repetitions) / Date().timeIntervalSince(start) / 1e9
                } } }
            }
            let fp32 = time(BLAS.float32)
            var line: [String: Any] = ["bench": "gemm", "shape": what, "m": m, "n": n, "k": k, "trans_a": ta, "trans_b": tb,
                                       "fp32_gflops": fp32, "blas_core": BLAS.coreName, "bf16_supported": BFloat16.isSupported,
                                       "amx_bf16": BFloat16.hasAMX]
            if BFloat16.isSupported {
                let bf16 = time(BLAS.bfloat16)
                line["bf16_gflops"] = bf16
                line["ratio"] = bf16 / fp32
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
