import ArgumentParser
import Foundation
import NN
import Seeded

/// `gigapatch-bench gemm`: one core's matrix products in bf16 (Gigapatch's AVX512-BF16 kernel, and its AMX kernel
/// where usable) against float32 (OpenBLAS sgemm), on the shapes of resnet18's or mobilenet_v2's convolutions at 128 px, batch 16; a JSON line per
/// shape.
struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm", abstract: "Time single-threaded bf16 and fp32 matrix products on convolution shapes; a JSON line per shape.")
    @Option(help: "Floating-point operations per timed measurement (per shape and precision).") var work: Double = 2e10
    @Option(help: "Whose shapes: resnet18 or mobilenet_v2.") var model: String = "resnet18"

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

    /// mobilenet_v2's pointwise (1x1) products, one image at 64, 32 and 16 px maps and the whole batch below: forward
    /// (out x positions x in), and for some the input gradient (in x positions x out, Aᵀ) and weight gradient (Bᵀ).
    static let mobilenetShapes: [(String, Int, Int, Int, Bool, Bool)] = [
        ("block1 project 32->16, 64x64", 16, 4096, 32, false, false),
        ("block2 expand 16->96, 64x64", 96, 4096, 16, false, false),
        ("block2 expand input gradient", 16, 4096, 96, true, false),
        ("block2 expand weight gradient", 96, 16, 4096, false, true),
        ("block3 expand 24->144, 32x32", 144, 1024, 24, false, false),
        ("block3 project 144->24, 32x32", 24, 1024, 144, false, false),
        ("block5 expand 32->192, 16x16", 192, 256, 32, false, false),
        ("block5 project 192->32, 16x16", 32, 256, 192, false, false),
        ("block8 expand 64->384, batch 8x8", 384, 1024, 64, false, false),
        ("block8 project 384->64, batch 8x8", 64, 1024, 384, false, false),
        ("block8 project input gradient", 384, 1024, 64, true, false),
        ("block8 project weight gradient", 64, 384, 1024, false, true),
        ("block12 expand 96->576, batch 8x8", 576, 1024, 96, false, false),
        ("block15 expand 160->960, batch 4x4", 960, 256, 160, false, false),
        ("block15 project 960->160, batch 4x4", 160, 256, 960, false, false),
        ("last 320->1280, batch 4x4", 1280, 256, 320, false, false),
    ]

    func run() throws {
        BLAS.configure()
        var rng = SplitMix64(seed: 4)
        let shapes: [(String, Int, Int, Int, Bool, Bool)]
        switch model {
        case "resnet18": shapes = Self.shapes
        case "mobilenet_v2": shapes = Self.mobilenetShapes
        default: throw ValidationError("--model must be resnet18 or mobilenet_v2, not \(model)")
        }
        for (what, m, n, k, ta, tb) in shapes {
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
                                       "amx_bf16": BFloat16.hasAMX, "amx_usable": BFloat16.amxUsable, "bf16_kernel": BFloat16.kernel]
            if BFloat16.isSupported {
                let bf16 = time(BLAS.bfloat16AVX512)
                line["bf16_gflops"] = bf16
                line["ratio"] = bf16 / fp32
                if BFloat16.amxUsable {
                    let amx = time(BLAS.bfloat16AMX)
                    line["amx_gflops"] = amx
                    line["amx_ratio"] = amx / fp32
                }
            }
            print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
        }
    }
}
