import NN
import Seeded
import Testing

/// The split GEMM (column or row blocks on Gigapatch's workers) against a naive product, every transpose combination.
struct BLASTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)], [(40, 300, 200), (300, 40, 200), (17, 1000, 129)])
    func splitGemmMatchesNaive(transposes: (Bool, Bool), shape: (Int, Int, Int)) {
        let (ta, tb) = transposes, (m, n, k) = shape
        var rng = SplitMix64(seed: 9)
        let a = (0 ..< m * k).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let b = (0 ..< k * n).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        var c = (0 ..< m * n).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let c0 = c
        let lda = ta ? m : k, ldb = tb ? k : n
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { pb in c.withUnsafeMutableBufferPointer { pc in
            BLAS.gemm(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 0.5, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                      beta: 2, c: pc.baseAddress!, ldc: n)
        } } }
        var worst: Float = 0
        for i in 0 ..< m {
            for j in 0 ..< n {
                var s: Double = 0
                for p in 0 ..< k { s += Double(ta ? a[p * m + i] : a[i * k + p]) * Double(tb ? b[j * k + p] : b[p * n + j]) }
                worst = max(worst, abs(c[i * n + j] - Float(0.5 * s + 2 * Double(c0[i * n + j]))))
            }
        }
        #expect(worst < 1e-3)
    }
}
