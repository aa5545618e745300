import Foundation

/// A loss value and the gradient of the loss with respect to the model output.
public struct LossResult: Sendable {
    public let loss: Float
    public let gradient: Tensor
}

/// Softmax cross-entropy over (N, K) logits, with PyTorch's label smoothing and class weights ('mean' reduction).
///
/// loss = [ (1-e) sum_i w[y_i] (-log p[i, y_i]) + (e/K) sum_i sum_c w[c] (-log p[i, c]) ] / sum_i w[y_i]
public enum CrossEntropy {
    public static func compute(logits: Tensor, targets: [Int], weights: [Float]? = nil, labelSmoothing e: Float = 0) -> LossResult {
        let n = logits.shape[0], k = logits.count / n
        precondition(targets.count == n && targets.allSatisfy { (0 ..< k).contains($0) }, "targets must be class indices 0..<\(k)")
        let w = weights ?? [Float](repeating: 1, count: k)
        let wsum = w.reduce(0, +)
        let grad = Tensor(uninitialized: logits.shape)
        let pz = logits.pointer, pg = grad.pointer
        var total: Double = 0, normalizer: Double = 0
        for i in 0 ..< n {
            let row = pz + i * k, g = pg + i * k
            var mx = row[0]
            for j in 1 ..< k { mx = max(mx, row[j]) }
            var z: Double = 0
            for j in 0 ..< k { z += exp(Double(row[j] - mx)) }
            let logZ = Double(mx) + log(z)
            let t = targets[i], wt = Double(w[t])
            var smooth: Double = 0
            for j in 0 ..< k { smooth += Double(w[j]) * (logZ - Double(row[j])) }
            total += (1 - Double(e)) * wt * (logZ - Double(row[t])) + Double(e) / Double(k) * smooth
            normalizer += wt
            for j in 0 ..< k {
                let p = Float(exp(Double(row[j]) - logZ))
                g[j] = (1 - e) * Float(wt) * (p - (j == t ? 1 : 0)) + e / Float(k) * (p * wsum - w[j])
            }
        }
        let scale = Float(1 / normalizer)
        for i in 0 ..< grad.count { pg[i] *= scale }
        return LossResult(loss: Float(total / normalizer), gradient: grad)
    }
}

/// Losses for ordered grades (ISUP 0-5): cumulative binary cross-entropy or mean squared error on the grade.
public enum OrdinalLoss {
    /// K-1 logits per example; target t sets bins j < t to 1. Mean BCE-with-logits over all N x (K-1) bins.
    public static func cumulativeBCE(logits: Tensor, targets: [Int]) -> LossResult {
        let n = logits.shape[0], bins = logits.count / n
        let grad = Tensor(uninitialized: logits.shape)
        let pz = logits.pointer, pg = grad.pointer
        var total: Double = 0
        let m = Float(n * bins)
        for i in 0 ..< n {
            for j in 0 ..< bins {
                let z = Double(pz[i * bins + j]), y: Double = targets[i] > j ? 1 : 0
                // log(1 + e^z) - y z, computed stably
                total += max(z, 0) - y * z + log(1 + exp(-abs(z)))
                pg[i * bins + j] = Float(1 / (1 + exp(-z)) - y) / m
            }
        }
        return LossResult(loss: Float(total / Double(n * bins)), gradient: grad)
    }

    /// The grade a cumulative model predicts: the number of bins with probability above one half.
    public static func cumulativePrediction(logits: Tensor) -> [Int] {
        let n = logits.shape[0], bins = logits.count / n, pz = logits.pointer
        return (0 ..< n).map { i in (0 ..< bins).filter { pz[i * bins + $0] > 0 }.count }
    }

    /// One output per example regressed onto the grade: mean (z - t)^2.
    public static func meanSquared(outputs: Tensor, targets: [Int]) -> LossResult {
        let n = outputs.shape[0]
        let grad = Tensor(uninitialized: outputs.shape)
        var total: Float = 0
        for i in 0 ..< n {
            let d = outputs.pointer[i] - Float(targets[i])
            total += d * d
            grad.pointer[i] = 2 * d / Float(n)
        }
        return LossResult(loss: total / Float(n), gradient: grad)
    }
}
