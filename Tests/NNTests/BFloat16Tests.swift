import Foundation
import NN
import Seeded
import Testing

/// bfloat16 (autocast) products: the rounding, the AVX512-BF16 kernel against its plain reference, and each layer's
/// bf16 forward and gradients against float32 within the bound bfloat16's 8-bit mantissa implies (`BFloat16Bound`).
/// Kernel and layer tests need AVX512_BF16 and are skipped, saying so, on a CPU without it.
struct BFloat16Tests {
    static let skipNote = "this CPU has no AVX512_BF16: bf16 kernel tests skipped (the fp32 fallback is tested)"

    @Test func roundingIsToNearestEvenAndKeepsSpecials() {
        let one: Float = 1, ulp = Float(1) / 128   // bfloat16's spacing at 1 is 2^-7
        let x: [Float] = [one, one + ulp / 2, one + 3 * ulp / 2, one + ulp / 2 + ulp / 64, -2.5, .infinity, -.infinity,
                          Float.leastNormalMagnitude / 4, 65504, 3.0e38]
        let y = BFloat16.rounded(x)
        #expect(y[0] == 1)
        #expect(y[1] == 1, "a tie rounds to the even neighbour (1.0)")
        #expect(y[2] == one + 2 * ulp, "a tie rounds to the even neighbour (1 + 2^-6)")
        #expect(y[3] == one + ulp, "above the tie rounds up")
        #expect(y[4] == -2.5)
        #expect(y[5] == .infinity && y[6] == -.infinity)
        #expect(y[7] == 0, "subnormals read as zero, as vdpbf16ps reads them")
        #expect(y[8] == 65536, "65504 has no bfloat16; the nearest is 2^16")
        #expect(y[9].isFinite && abs(y[9] - 3.0e38) / 3.0e38 < 1.0 / 256)
        #expect(BFloat16.rounded([.nan])[0].isNaN)
    }

    @Test func fallbackWithoutTheInstructionIsFloat32WithOneLine() {
        let (precision, note) = BFloat16.resolve(.bf16, supported: false)
        #expect(precision == .fp32)
        #expect(note?.contains("AVX512_BF16") == true && note?.contains("\n") == false)
        #expect(BFloat16.resolve(.bf16, supported: true).precision == .bf16)
        #expect(BFloat16.resolve(.fp32, supported: false).precision == .fp32 && BFloat16.resolve(.fp32, supported: false).note == nil)
    }

    static let amxSkipNote = "this process cannot use AMX-BF16 tiles: AMX kernel tests skipped (the AVX512_BF16 kernel is tested)"

    /// Both kernels by name, the chosen one, and the chosen one with a packed left operand, against the plain reference
    /// (same rounding, sums in double): they differ only by float32 summation. Shapes cover AMX's edges (16 and 32 rows
    /// and columns, 512-deep k blocks, odd k) and its whole-tile path (alpha 1, beta 0 or 1).
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)],
          [(1, 1, 1, 0.7, 0.5), (7, 13, 5, 0.7, 0.5), (37, 70, 129, 0.7, 0.5), (100, 1600, 800, 0.7, 0.5), (24, 50, 1000, 0.7, 0.5),
           (9, 33, 2, 0.7, 0.5), (64, 64, 64, 1, 1), (32, 32, 1030, 1, 0), (130, 97, 513, 1, 1), (48, 80, 33, 1, 0)])
    func kernelMatchesReference(transposes: (Bool, Bool), shape: (Int, Int, Int, Float, Float)) throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let (ta, tb) = transposes, (m, n, k, alpha, beta) = shape
        var rng = SplitMix64(seed: 11)
        let lda = ta ? m + 3 : k + 2, ldb = tb ? k + 1 : n + 5, ldc = n + 2
        let a = (0 ..< lda * (ta ? k : m)).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let b = (0 ..< ldb * (tb ? n : k)).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let c0 = (0 ..< ldc * m).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        var reference = c0
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in reference.withUnsafeMutableBufferPointer {
            BLAS.bfloat16Reference(ta, tb, m, n, k, alpha, pa.baseAddress!, lda, pb.baseAddress!, ldb, beta, $0.baseAddress!, ldc)
        } } }
        var kernels: [(String, BLAS.Product?)] = [("avx512", BLAS.bfloat16AVX512), ("chosen (\(BFloat16.kernel))", BLAS.bfloat16),
                                                  ("packed (\(BFloat16.kernel))", nil)]
        if BFloat16.amxUsable { kernels.append(("amx", BLAS.bfloat16AMX)) }
        for (name, product) in kernels {
            var out = c0
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in out.withUnsafeMutableBufferPointer { pc in
                if let product {
                    product(ta, tb, m, n, k, alpha, pa.baseAddress!, lda, pb.baseAddress!, ldb, beta, pc.baseAddress!, ldc)
                } else {
                    // The packed left operand, through the split driver (row and column blocks on the workers).
                    let operand = PackedOperand(transA: ta, m: m, k: k, a: pa.baseAddress!, lda: lda, precision: .bf16)
                    BLAS.gemm(operand, transB: tb, n: n, alpha: alpha, b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            } } }
            var worst: Float = 0, pastN = 0
            for i in 0 ..< m {
                for j in 0 ..< ldc {
                    let at = i * ldc + j
                    if j >= n { pastN += out[at] == c0[at] ? 0 : 1 } else { worst = max(worst, abs(out[at] - reference[at])) }
                }
            }
            #expect(pastN == 0, "\(name): \(pastN) entries past column n were written")
            // float32 summation of k products of magnitude <= 1, against double.
            #expect(worst <= Float(k) * 1.2e-7 + 1e-6, "\(name) vs reference: \(worst)")
        }
    }

    @Test func amxIsChosenWhereUsable() throws {
        if !BFloat16.amxUsable { try Test.cancel(Comment(rawValue: Self.amxSkipNote)) }
        let forced = ProcessInfo.processInfo.environment["GIGAPATCH_BF16_KERNEL"] == "avx512"
        #expect(BFloat16.kernel == (forced ? "avx512" : "amx"))
    }

    /// bf16 against float32 for plain products: within the documented bound, and visibly not float32.
    @Test func productErrorIsWithinTheBound() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let (m, n, k) = (64, 200, 300)
        var rng = SplitMix64(seed: 12)
        let a = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        var half = [Float](repeating: 0, count: m * n), full = half
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in
            half.withUnsafeMutableBufferPointer { BLAS.gemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n, precision: .bf16) }
            full.withUnsafeMutableBufferPointer { BLAS.gemm(m: m, n: n, k: k, a: pa.baseAddress!, lda: k, b: pb.baseAddress!, ldb: n, c: $0.baseAddress!, ldc: n) }
        } }
        var worstRatio = 0.0
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s = 0.0
                for p in 0 ..< k { s += Double(abs(a[i * k + p] * b[p * n + j])) }
                worstRatio = max(worstRatio, Double(abs(half[i * n + j] - full[i * n + j])) / (s * BFloat16Bound.product(k: k)))
            }
        }
        #expect(worstRatio <= 1, "bf16 error exceeds the bound: \(worstRatio) of it")
        #expect(worstRatio > 0.01, "bf16 indistinguishable from fp32 (\(worstRatio) of the bound): the bf16 path was not taken")
    }
}

/// Each layer in bf16 against the same layer in float32: output, input gradient and weight gradient, elementwise within
/// `BFloat16Bound` times the same quantity computed on absolute values (|x|, |w|, |dy|), which bounds the rounding's effect.
struct BFloat16LayerTests {
    struct Case: CustomStringConvertible, @unchecked Sendable {
        let name: String
        let input: [Int]
        let make: (ParameterStore) -> Layer
        /// Relative bound in units of 2^-8 (1 for plain products; 2 for Winograd, whose transforms can widen it: measured within 1).
        var units: Double = 1
        /// The case runs on oneDNN's convolutions (skipped where they are not available); the others on the own kernels.
        var oneDNN = false
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "conv 3x3 Winograd (16 x 16)", input: [2, 8, 16, 16], make: {
            let c = Conv2d($0, "c", in: 8, out: 16, kernel: 3, padding: 1); c.winograd = .always; c.oneDNN = false; return c }, units: 2),
        Case(name: "conv 3x3 unrolled per image (16 x 16)", input: [2, 8, 16, 16], make: {
            let c = Conv2d($0, "c", in: 8, out: 16, kernel: 3, padding: 1); c.winograd = .never; c.oneDNN = false; return c }),
        Case(name: "conv 3x3 s2 batch path", input: [3, 6, 9, 9], make: {
            let c = Conv2d($0, "c", in: 6, out: 10, kernel: 3, stride: 2, padding: 1); c.oneDNN = false; return c }),
        Case(name: "conv 1x1 pointwise per image", input: [2, 12, 16, 17], make: { Conv2d($0, "c", in: 12, out: 20, kernel: 1, bias: false) }),
        Case(name: "conv 3x3 grouped", input: [2, 8, 6, 6], make: { Conv2d($0, "c", in: 8, out: 8, kernel: 3, padding: 1, groups: 2) }),
        Case(name: "conv 7x7 s2 stem", input: [2, 3, 32, 32], make: { Conv2d($0, "c", in: 3, out: 16, kernel: 7, stride: 2, padding: 3, bias: false) }),
        Case(name: "conv 3x3 oneDNN (16 x 16)", input: [2, 8, 16, 16], make: { Conv2d($0, "c", in: 8, out: 16, kernel: 3, padding: 1) },
             oneDNN: true),
        Case(name: "conv 3x3 s2 oneDNN with bias (9 x 11)", input: [3, 8, 9, 11], make: {
            Conv2d($0, "c", in: 8, out: 10, kernel: 3, stride: 2, padding: 1) }, oneDNN: true),
        Case(name: "conv 5x5 dilation 2 oneDNN", input: [2, 9, 12, 11], make: {
            Conv2d($0, "c", in: 9, out: 12, kernel: 5, padding: 4, dilation: 2, bias: false) }, oneDNN: true),
        Case(name: "linear", input: [5, 40], make: { Linear($0, "fc", in: 40, out: 9) }),
    ]

    @Test(arguments: cases)
    func bf16WithinBoundOfFloat32(_ c: Case) throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if c.oneDNN && !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: OneDNNTests.skipNote)) }
        var rng = SplitMix64(seed: 21)
        let count = c.input.reduce(1, *)
        let x = (0 ..< count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        // Three copies of the layer with the same weights: fp32, bf16, and fp32 on absolute values (the bound's scale).
        func run(_ precision: Precision, absolute: Bool, dy: [Float]?) -> (y: [Float], dx: [Float], dw: [Float]) {
            let store = ParameterStore()
            let layer = c.make(store)
            store.finalize(seed: 3)
            if absolute { for i in 0 ..< store.parameterCount { store.values[i] = abs(store.values[i]) } }
            let ctx = Context(training: true, precision: precision)
            let y = layer.forward(Tensor(shape: c.input, values: absolute ? x.map(abs) : x), ctx)
            let g = dy ?? [Float](repeating: 1, count: y.count)
            store.zeroGradients()
            let dx = layer.backward(Tensor(shape: y.shape, values: absolute ? g.map(abs) : g), ctx)
            return (y.array, dx.array, Array(store.gradients))
        }
        let probe = run(.fp32, absolute: false, dy: nil)
        let dy = (0 ..< probe.y.count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let full = run(.fp32, absolute: false, dy: dy), half = run(.bf16, absolute: false, dy: dy), scale = run(.fp32, absolute: true, dy: dy)
        let bound = BFloat16Bound.relative * c.units
        for (what, h, f, s) in [("output", half.y, full.y, scale.y), ("input gradient", half.dx, full.dx, scale.dx),
                                ("weight gradient", half.dw, full.dw, scale.dw)] {
            var worst = 0.0, differs = false
            for i in h.indices {
                let error = Double(abs(h[i] - f[i])), limit = bound * Double(s[i]) + 1e-6
                worst = max(worst, error / limit)
                differs = differs || h[i] != f[i]
            }
            #expect(worst <= 1, "\(c.name) \(what): bf16 error is \(worst) of the bound")
            #expect(differs, "\(c.name) \(what): bf16 equals fp32 exactly (the bf16 path was not taken)")
        }
    }
}

/// The documented error bound of bf16 products (README, "Mixed precision"): each operand is rounded to bfloat16 with
/// relative error at most 2^-9, so a product of two is off by at most 2^-8 (1 + 2^-9) of its magnitude, and a sum of k
/// of them by that times the sum of the magnitudes, plus float32 summation (k 2^-24 of the same sum).
enum BFloat16Bound {
    static let relative = 0x1p-8 * (1 + 0x1p-9)
    static func product(k: Int) -> Double { relative + Double(k) * 0x1p-24 }
}
