/// Fully connected layer: y (N, out) = x (N, in) * W^T + b, W stored (out, in) as PyTorch does.
public final class Linear: Layer {
    public let inFeatures: Int, outFeatures: Int
    unowned let store: ParameterStore
    let weight: Int, bias: Int
    private var input: Tensor?

    public init(_ store: ParameterStore, _ name: String, in inFeatures: Int, out outFeatures: Int, bias: Bool = true,
                initializer: Initializer? = nil) {
        self.store = store
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = store.declare("\(name).weight", shape: [outFeatures, inFeatures], initializer: initializer ?? .uniform(bound: bound))
        self.bias = bias ? store.declare("\(name).bias", shape: [outFeatures], initializer: .uniform(bound: bound)) : -1
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let n = x.shape[0]
        precondition(x.count == n * inFeatures, "Linear expects \(inFeatures) features, got shape \(x.shape)")
        let y = Tensor(uninitialized: [n, outFeatures])
        if bias >= 0 {
            let pb = store.value(bias), py = y.pointer
            for i in 0 ..< n { (py + i * outFeatures).update(from: pb, count: outFeatures) }
        }
        BLAS.gemm(transB: true, m: n, n: outFeatures, k: inFeatures, a: x.pointer, lda: inFeatures, b: store.value(weight), ldb: inFeatures,
                  beta: bias >= 0 ? 1 : 0, c: y.pointer, ldc: outFeatures, precision: ctx.precision)
        input = ctx.recordForBackward ? x : nil
        return y
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        guard let x = input else { preconditionFailure("Linear.backward without a recorded forward") }
        let n = x.shape[0]
        // dW (out x in) += dy^T (out x n) * x (n x in); db += column sums of dy; dx (n x in) = dy (n x out) * W (out x in)
        BLAS.gemm(transA: true, m: outFeatures, n: inFeatures, k: n, a: dy.pointer, lda: outFeatures, b: x.pointer, ldb: inFeatures,
                  beta: 1, c: store.gradient(weight), ldc: inFeatures, precision: ctx.precision)
        if bias >= 0 {
            let db = store.gradient(bias), pdy = dy.pointer
            for i in 0 ..< n { for j in 0 ..< outFeatures { db[j] += pdy[i * outFeatures + j] } }
        }
        let dx = Tensor(uninitialized: x.shape)
        BLAS.gemm(m: n, n: inFeatures, k: outFeatures, a: dy.pointer, lda: outFeatures, b: store.value(weight), ldb: inFeatures,
                  c: dx.pointer, ldc: inFeatures, precision: ctx.precision)
        input = nil
        return dx
    }
}
