import CBF16
import CDNNL
import Foundation

/// oneDNN's direct bfloat16 convolutions (`CDNNL`): what `--precision bf16` runs ungrouped convolutions on when the
/// library is installed. They keep autocast's semantics (inputs and weights rounded to bfloat16, float32 sums, float32
/// tensors in and out). Alone they measured 1.3-1.7x faster than Gigapatch's own bf16 convolutions on tiny's and
/// resnet18's shapes; with oneDNN's reorders from and to float32 NCHW, 1.15x and 1.10x over each model's
/// convolutions. Inputs and output gradients are now converted by `blocked16` instead, once each (BENCHMARKS.md).
public enum OneDNN {
    /// Whether oneDNN's convolutions run here: the CPU runs bfloat16 (`BFloat16.isSupported`) and libdnnl.so.2 loaded.
    /// The environment variable `GIGAPATCH_ONEDNN=0` turns them off (the own kernels run instead).
    public static let availability: Result<String, OneDNNError> = {
        if ProcessInfo.processInfo.environment["GIGAPATCH_ONEDNN"] == "0" {
            return .failure(OneDNNError("turned off by GIGAPATCH_ONEDNN=0"))
        }
        guard BFloat16.isSupported else { return .failure(OneDNNError("this CPU has no AVX512_BF16")) }
        var error = [CChar](repeating: 0, count: 512)
        guard gp_dnnl_open(&error, Int32(error.count)) == 0 else { return .failure(OneDNNError(OneDNNError.text(error))) }
        return .success(String(validatingCString: gp_dnnl_version()) ?? "")
    }()

    public static var isAvailable: Bool { if case .success = availability { true } else { false } }

    /// x (n, c, h, w) in oneDNN's bfloat16 layout aBcd16b (nChw16c), rounded as every bf16 operand is: what a
    /// convolution whose `blockedInput` (or `blockedOutputGradient`) is true reads instead of converting the tensor
    /// itself. The bfloat16 values are held two to a float of the returned tensor (count / 2 floats). c must be a
    /// multiple of 16. Made once for both passes, where oneDNN's reorders converted x in each (BENCHMARKS.md: tiny's
    /// bf16 training step).
    /// `reference`: the plain loop (`gp_bf16_to_blocked16_reference`) the kernel is tested against.
    static func blocked16(_ x: Tensor, reference: Bool = false) -> Tensor {
        let (n, c, h, w) = x.nchw
        precondition(c % 16 == 0, "blocked16 needs a multiple of 16 channels, got \(c)")
        let y = Tensor(uninitialized: [x.count / 2]), p = h * w
        let px = x.pointer, py = UnsafeMutableRawPointer(y.pointer).assumingMemoryBound(to: UInt16.self)
        Parallel.forRange(n * c / 16, grain: max(1, (1 << 14) / max(1, 16 * p))) { r in
            if reference { gp_bf16_to_blocked16_reference(px, py, p, r.lowerBound, r.upperBound) }
            else { gp_bf16_to_blocked16(px, py, p, r.lowerBound, r.upperBound) }
        }
        return y
    }

    /// The line a run in `precision` logs about its convolutions; nil in float32.
    public static func note(for precision: Precision) -> String? {
        precision == .bf16 ? "precision bf16: convolutions on \(summary)" : nil
    }

    /// "oneDNN 2.6.3", or why bf16 convolutions use Gigapatch's own kernels.
    public static var summary: String {
        switch availability {
        case .success(let version): "oneDNN \(version)"
        case .failure(let error): "Gigapatch's own kernels (oneDNN: \(error.message))"
        }
    }
}

/// A oneDNN failure: its message, with what was being done.
public struct OneDNNError: Error, CustomStringConvertible, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }

    /// The text a C call left in `buffer` (NUL-terminated).
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// One convolution shape on oneDNN: primitives made once (`gp_dnnl_conv_create`), float32 NCHW tensors in and out.
final class OneDNNConvolution {
    private let handle: OpaquePointer
    /// Bytes of scratch each pass needs (from `OneDNNScratch`).
    private let forwardScratch: Int, backwardScratch: Int
    /// Whether x (read by both passes) and dy may be given converted by `OneDNN.blocked16`.
    let blockedInput: Bool, blockedOutputGradient: Bool

    /// The convolution of x (n, c, h, w) by `conv`'s weights; `inputGradient` false: backward makes only dW.
    init(_ conv: Conv2d, n: Int, h: Int, w: Int, inputGradient: Bool) throws(OneDNNError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let handle = gp_dnnl_conv_create(n, conv.inChannels, h, w, conv.outChannels, conv.kernel.h, conv.stride, conv.padding,
                                               conv.dilation, inputGradient ? 1 : 0, Int32(Parallel.threads), &error, Int32(error.count)) else {
            throw OneDNNError("\(OneDNNError.text(error)) (convolution \(conv.inChannels) -> \(conv.outChannels), \(conv.kernel.h)x\(conv.kernel.w)/\(conv.stride), input \(n)x\(h)x\(w))")
        }
        self.handle = handle
        forwardScratch = gp_dnnl_conv_forward_scratch(handle)
        backwardScratch = gp_dnnl_conv_backward_scratch(handle)
        blockedInput = gp_dnnl_conv_blocked_input(handle) != 0
        blockedOutputGradient = gp_dnnl_conv_blocked_output_gradient(handle) != 0
    }

    deinit { gp_dnnl_conv_destroy(handle) }

    /// The kernel oneDNN chose for the forward pass, e.g. "jit_bf16:avx512_core_bf16".
    var implementation: String { String(validatingCString: gp_dnnl_conv_implementation(handle)) ?? "" }

    /// y (n, o, ho, wo) = the convolution of x (n, c, h, w) with weights (o, c, k, k). `blocked`: x converted by
    /// `OneDNN.blocked16` (only where `blockedInput`), read instead of converting x.
    func forward(_ x: UnsafePointer<Float>, blocked: UnsafePointer<Float>? = nil, weights: UnsafePointer<Float>,
                 into y: UnsafeMutablePointer<Float>) {
        var error = [CChar](repeating: 0, count: 512)
        let status = OneDNNScratch.shared.with(bytes: forwardScratch) { scratch in
            gp_dnnl_conv_forward(handle, Int32(Parallel.threads), x, blocked, weights, y, scratch, &error, Int32(error.count))
        }
        guard status == 0 else { fatalError(OneDNNError.text(error)) }
    }

    /// dx (n, c, h, w) = the input gradient (overwritten; none when nil) and dW (o, c, k, k) += the weight gradient.
    /// `xBlocked`, `dyBlocked`: x and dy converted by `OneDNN.blocked16` (where `blockedInput`, `blockedOutputGradient`).
    func backward(_ x: UnsafePointer<Float>, xBlocked: UnsafePointer<Float>? = nil, _ dy: UnsafePointer<Float>,
                  dyBlocked: UnsafePointer<Float>? = nil, weights: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                  dw: UnsafeMutablePointer<Float>) {
        var error = [CChar](repeating: 0, count: 512)
        let status = OneDNNScratch.shared.with(bytes: backwardScratch) { scratch in
            gp_dnnl_conv_backward(handle, Int32(Parallel.threads), x, xBlocked, dy, dyBlocked, weights, dx, dw, scratch, &error,
                                  Int32(error.count))
        }
        guard status == 0 else { fatalError(OneDNNError.text(error)) }
    }
}

/// The bfloat16 copies and layouts of oneDNN's calls, in one buffer that grows to the largest call's need and is
/// reused by every call after it. Per-call buffers from the tensor pool, which keeps freed buffers by exact size, held
/// one buffer per layer and pass: 165 MB more at the peak of tiny's bf16 training step (batch 32) than the own kernels.
/// Calls hold the buffer for their duration, so calls from several threads take turns.
final class OneDNNScratch: @unchecked Sendable {
    static let shared = OneDNNScratch()
    private let lock = NSLock()
    private var buffer: UnsafeMutableRawPointer?
    private var capacity = 0

    func with<R>(bytes: Int, _ body: (UnsafeMutableRawPointer) -> R) -> R {
        lock.lock()
        defer { lock.unlock() }
        if capacity < bytes || buffer == nil {
            buffer?.deallocate()
            capacity = max(bytes, 64)
            buffer = .allocate(byteCount: capacity, alignment: 64)
        }
        return body(buffer!)
    }
}
