import CBF16
import Foundation

/// The precision of the matrix products inside convolutions and linear layers, as PyTorch's CPU autocast:
/// with `bf16` their inputs and weights are rounded to bfloat16 (8-bit mantissa, round to nearest even) and the
/// products are summed in float32. Weights, gradients, optimizer moments, BatchNorm, activations, softmax and losses
/// stay float32, and so does every tensor between layers; checkpoints are float32 in either precision.
/// Depthwise convolutions (a direct loop, no matrix product) and Winograd's transforms stay float32. Where oneDNN is
/// installed, most convolutions run on its direct bfloat16 kernels instead, with the same semantics (`OneDNN`).
public enum Precision: String, Sendable, CaseIterable, Codable {
    case fp32
    case bf16
}

/// What this CPU offers for bfloat16, detected once at run time.
public enum BFloat16 {
    /// AVX512_BF16 (vdpbf16ps) is there and the operating system enables AVX-512 state. The environment variable
    /// `GIGAPATCH_DISABLE_BF16=1` makes it false, to try the fallback on a machine that has it.
    public static let isSupported: Bool = {
        if ProcessInfo.processInfo.environment["GIGAPATCH_DISABLE_BF16"] == "1" { return false }
        return gp_bf16_supported() != 0
    }()

    /// The CPU reports AMX-BF16 tiles (cpuid; `amxUsable` says whether this process can use them).
    public static var hasAMX: Bool { gp_amx_bf16_supported() != 0 }

    /// AMX-BF16 can be used here: the CPU has the tiles, the OS enables their state and granted this process tile data.
    public static let amxUsable: Bool = isSupported && gp_amx_usable() != 0

    /// The bfloat16 kernel the products use, chosen once per process: "amx" where `amxUsable` (unless the environment
    /// variable `GIGAPATCH_BF16_KERNEL=avx512` asks for the AVX512_BF16 kernel), "avx512", or "none".
    public static let kernel: String = {
        guard isSupported else { return "none" }
        return gp_bf16_kernel() == 2 ? "amx" : "avx512"
    }()

    /// The precision a run asking for `requested` gets, and a one-line note when it differs: without AVX512_BF16,
    /// bf16 falls back to float32 (the products would otherwise be emulated, several times slower than float32).
    /// - Parameter supported: whether the CPU runs bf16 (default: this one's answer; tests pass either).
    public static func resolve(_ requested: Precision, supported: Bool = isSupported) -> (precision: Precision, note: String?) {
        guard requested == .bf16, !supported else { return (requested, nil) }
        return (.fp32, "precision bf16: this CPU has no AVX512_BF16 (vdpbf16ps), so the run uses fp32 instead")
    }

    /// `x` rounded to the nearest bfloat16 (ties to even) and back, as the kernels round their operands.
    public static func rounded(_ x: [Float]) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        x.withUnsafeBufferPointer { src in y.withUnsafeMutableBufferPointer { gp_bf16_round(src.baseAddress!, $0.baseAddress!, x.count) } }
        return y
    }
}
