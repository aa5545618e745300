import CBLAS

/// Row-major single-precision matrix products through OpenBLAS.
public enum BLAS {
    /// C (m x n) = alpha * op(A) * op(B) + beta * C, row-major; `op` transposes when the flag is set.
    ///
    /// - Parameters:
    ///   - a: m x k (or k x m when `transA`), leading dimension `lda`
    ///   - b: k x n (or n x k when `transB`), leading dimension `ldb`
    ///   - c: m x n, leading dimension `ldc`
    ///   - split: whether a large product may be split over the workers (false inside code that is already parallel)
    ///
    /// OpenBLAS runs single-threaded (see `configure`); large products are split into column (or row) blocks
    /// computed on Gigapatch's own workers, so one thread pool serves both GEMMs and elementwise loops instead of
    /// OpenBLAS's spinning workers competing with it for the cores.
    @inlinable
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                            beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int, split: Bool = true) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if beta == 0 { for i in 0 ..< m { (c + i * ldc).update(repeating: 0, count: n) } }
            return
        }
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        let work = m * n * k
        if !split || Parallel.threads <= 1 || work < 1 << 21 {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        } else if n >= m {
            // Column blocks: C[:, j0..<j1] = op(A) * op(B)[:, j0..<j1]; blocks are multiples of 16 columns.
            let blocks = min(Parallel.threads, max(1, n / 16))
            Parallel.forRange(blocks) { r in
                for blk in r {
                    let j0 = n * blk / blocks / 16 * 16, j1 = blk == blocks - 1 ? n : n * (blk + 1) / blocks / 16 * 16
                    guard j1 > j0 else { continue }
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(j1 - j0), Int32(k), alpha, a, Int32(lda),
                                b + (transB ? j0 * ldb : j0), Int32(ldb), beta, c + j0, Int32(ldc))
                }
            }
        } else {
            // Row blocks: C[i0..<i1, :] = op(A)[i0..<i1, :] * op(B).
            let blocks = min(Parallel.threads, max(1, m / 16))
            Parallel.forRange(blocks) { r in
                for blk in r {
                    let i0 = m * blk / blocks / 16 * 16, i1 = blk == blocks - 1 ? m : m * (blk + 1) / blocks / 16 * 16
                    guard i1 > i0 else { continue }
                    cblas_sgemm(CblasRowMajor, ta, tb, Int32(i1 - i0), Int32(n), Int32(k), alpha, a + (transA ? i0 : i0 * lda), Int32(lda),
                                b, Int32(ldb), beta, c + i0 * ldc, Int32(ldc))
                }
            }
        }
    }

    /// Makes OpenBLAS single-threaded (Gigapatch splits products itself); called once before any product.
    public static func configure() {
        openblas_set_num_threads(1)
    }

    /// The kernel family OpenBLAS chose at load time (Haswell, SkylakeX, ...).
    public static var coreName: String { String(cString: openblas_get_corename()) }

    /// Threads OpenBLAS uses for one call.
    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}
