import CBF16
import CBLAS

/// Row-major matrix products: float32 through OpenBLAS, bfloat16 (autocast) through Gigapatch's AVX512-BF16 kernels.
public enum BLAS {
    /// C (m x n) = alpha * op(A) * op(B) + beta * C, row-major; `op` transposes when the flag is set.
    ///
    /// - Parameters:
    ///   - a: m x k (or k x m when `transA`), leading dimension `lda`
    ///   - b: k x n (or n x k when `transB`), leading dimension `ldb`
    ///   - c: m x n, leading dimension `ldc`
    ///   - split: whether a large product may be split over the workers (false inside code that is already parallel)
    ///   - precision: `.bf16` rounds op(A) and op(B) to bfloat16 and sums in float32 (`CBF16`); on a CPU without
    ///     AVX512_BF16 it computes in float32 (runs resolve their precision first: `BFloat16.resolve`)
    ///
    /// OpenBLAS runs single-threaded (see `configure`); large products are split into column (or row) blocks
    /// computed on Gigapatch's own workers, so one thread pool serves both GEMMs and elementwise loops instead of
    /// OpenBLAS's spinning workers competing with it for the cores.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true,
                            precision: Precision = .fp32) {
        let product: Product = precision == .bf16 && BFloat16.isSupported ? bfloat16 : float32
        blocks(m: m, n: n, k: k, beta: beta, c: c, ldc: ldc, split: split) { rows, cols in
            product(transA, transB, rows.count, cols.count, k, alpha, a + (transA ? rows.lowerBound : rows.lowerBound * lda), lda,
                    b + (transB ? cols.lowerBound * ldb : cols.lowerBound), ldb, beta, c + rows.lowerBound * ldc + cols.lowerBound, ldc)
        }
    }

    /// How a product of C (m x n) over k is shared out: `body(rows, cols)` for each block of C, the whole of it on the
    /// calling thread when small (or `split` is false), else column blocks (n >= m) or row blocks on the workers,
    /// multiples of 16 wide. With k == 0, C = beta C is done here (beta 0 or 1).
    @inlinable
    static func blocks(m: Int, n: Int, k: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool,
                       _ body: (_ rows: Range<Int>, _ cols: Range<Int>) -> Void) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 { for i in 0 ..< m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        if !split || Parallel.threads <= 1 || m * n * k < 1 << 21 {
            body(0 ..< m, 0 ..< n)
            return
        }
        let columns = n >= m, side = columns ? n : m
        let count = min(Parallel.threads, max(1, side / 16))
        Parallel.forRange(count) { r in
            for blk in r {
                let lo = side * blk / count / 16 * 16, hi = blk == count - 1 ? side : side * (blk + 1) / count / 16 * 16
                guard hi > lo else { continue }
                if columns { body(0 ..< m, lo ..< hi) } else { body(lo ..< hi, 0 ..< n) }
            }
        }
    }

    /// One single-threaded product: (transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc).
    public typealias Product = @Sendable (Bool, Bool, Int, Int, Int, Float, UnsafePointer<Float>, Int, UnsafePointer<Float>, Int, Float,
                                UnsafeMutablePointer<Float>, Int) -> Void

    /// OpenBLAS's sgemm (single-threaded from the first product on, whether or not `configure` was called).
    public static let float32: Product = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        _ = singleThreaded
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Gigapatch's bfloat16 kernel, AMX where usable and AVX512_BF16 otherwise (`BFloat16.kernel`; requires
    /// `BFloat16.isSupported`).
    public static let bfloat16: Product = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        gp_bf16_gemm(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// The AVX512_BF16 kernel whatever `BFloat16.kernel` chose (requires `BFloat16.isSupported`).
    public static let bfloat16AVX512: Product = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        gp_bf16_gemm_avx512(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// The AMX kernel whatever `BFloat16.kernel` chose (requires `BFloat16.amxUsable`).
    public static let bfloat16AMX: Product = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        gp_bf16_gemm_amx(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// The bfloat16 product computed plainly (operands rounded as the kernel rounds them, sums in double): the
    /// reference the kernel is tested against; runs on any CPU.
    public static let bfloat16Reference: Product = { ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
        gp_bf16_gemm_reference(ta ? 1 : 0, tb ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// Makes OpenBLAS single-threaded (Gigapatch splits products itself); called once before any product.
    public static func configure() {
        _ = singleThreaded
    }

    /// Set once, before the first product: OpenBLAS's own threads are never used, and its thread count never changes
    /// while a product runs on another thread (a process that multiplied before `configure`, such as a test runner
    /// running layer tests beside training tests, used to run OpenBLAS with its default threads until then).
    static let singleThreaded: Void = { openblas_set_num_threads(1) }()

    /// The kernel family OpenBLAS chose at load time (Haswell, SkylakeX, ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}

/// op(A) of many products with the same left operand (a layer's weights, Winograd's transformed weights), prepared
/// once: in bf16 rounded and packed in the kernel's layout (`gp_bf16_pack_a`), so the products skip packing it; in fp32
/// the matrix itself. `BLAS.gemm(_:transB:n:...)` multiplies with it.
public final class PackedOperand: @unchecked Sendable {
    public let transA: Bool, m: Int, k: Int
    let a: UnsafePointer<Float>, lda: Int
    /// The packed bfloat16 words; nil in fp32 (or on a CPU without AVX512_BF16).
    let packed: UnsafeMutablePointer<UInt32>?

    /// - Parameters:
    ///   - a: m x k (or k x m when `transA`), leading dimension `lda`; must outlive this operand in fp32
    ///   - parallel: pack on the workers (false inside code that is already parallel)
    public init(transA: Bool = false, m: Int, k: Int, a: UnsafePointer<Float>, lda: Int, precision: Precision, parallel: Bool = true) {
        self.transA = transA
        self.m = m
        self.k = k
        self.a = a
        self.lda = lda
        guard precision == .bf16, BFloat16.isSupported, m > 0, k > 0 else { packed = nil; return }
        let words = gp_bf16_packed_a_words(m, k), blocks = gp_bf16_packed_a_blocks(k)
        let out = UnsafeMutablePointer<UInt32>.allocate(capacity: words)
        if parallel && blocks > 1 && m * k >= 1 << 16 {
            Parallel.forRange(blocks) { r in gp_bf16_pack_a(transA ? 1 : 0, m, k, a, lda, out, r.lowerBound, r.upperBound) }
        } else {
            gp_bf16_pack_a(transA ? 1 : 0, m, k, a, lda, out, 0, blocks)
        }
        packed = out
    }

    deinit { packed?.deallocate() }

    /// C (rows.count x n) = alpha * op(A)[rows] * op(B) + beta * C, single-threaded; rows start at a multiple of 16 (as `blocks` splits them).
    @usableFromInline
    func multiply(rows: Range<Int>, transB: Bool, n: Int, alpha: Float, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                  c: UnsafeMutablePointer<Float>, ldc: Int) {
        if let packed {
            gp_bf16_gemm_packed(packed, m, k, rows.lowerBound, rows.count, transB ? 1 : 0, n, alpha, b, ldb, beta, c, ldc)
        } else {
            BLAS.float32(transA, transB, rows.count, n, k, alpha, transA ? a + rows.lowerBound : a + rows.lowerBound * lda, lda,
                         b, ldb, beta, c, ldc)
        }
    }
}

extension BLAS {
    /// C (m x n) = alpha * op(A) * op(B) + beta * C with a prepared op(A) (`PackedOperand`, m x k); otherwise as
    /// `gemm(transA:...)`, including how a large product is split over the workers.
    @inlinable
    public static func gemm(_ a: PackedOperand, transB: Bool = false, n: Int, alpha: Float = 1, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true) {
        blocks(m: a.m, n: n, k: a.k, beta: beta, c: c, ldc: ldc, split: split) { rows, cols in
            a.multiply(rows: rows, transB: transB, n: cols.count, alpha: alpha, b: b + (transB ? cols.lowerBound * ldb : cols.lowerBound),
                       ldb: ldb, beta: beta, c: c + rows.lowerBound * ldc + cols.lowerBound, ldc: ldc)
        }
    }
}
