/// Eigenvalues and eigenvectors of a symmetric 3 x 3 matrix by cyclic Jacobi rotations (double precision).
enum SymmetricEigen {
    /// Eigenvalues ascending, and the eigenvectors as columns in the same order (`vectors[row][column]`).
    static func decompose(_ m: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        var a = m
        var v: [[Double]] = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
        for _ in 0 ..< 64 {
            let off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2]
            if off < 1e-30 { break }
            for (p, q) in [(0, 1), (0, 2), (1, 2)] where abs(a[p][q]) > 1e-300 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0 ..< 3 {
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq
                    a[k][q] = s * akp + c * akq
                }
                for k in 0 ..< 3 {
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk
                    a[q][k] = s * apk + c * aqk
                }
                for k in 0 ..< 3 {
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
                }
            }
        }
        let order = (0 ..< 3).sorted { a[$0][$0] < a[$1][$1] }
        return (order.map { a[$0][$0] }, (0 ..< 3).map { row in order.map { v[row][$0] } })
    }
}
