/// out = main(x) + shortcut(x), followed by ReLU in the same pass when `relu` is set: ResNet blocks
/// (shortcut = downsample or identity, ReLU after the sum) and MobileNetV2's inverted residuals (identity, no ReLU).
public final class Residual: Layer {
    public let main: Layer
    public let shortcut: Layer?
    public let relu: Bool
    private var output: Tensor?

    public init(main: Layer, shortcut: Layer? = nil, relu: Bool = false) {
        self.main = main
        self.shortcut = shortcut
        self.relu = relu
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let a = main.forward(x, ctx), b = shortcut?.forward(x, ctx) ?? x
        guard relu else { return Elementwise.add(a, b) }
        let out = Tensor(uninitialized: a.shape)
        let (pa, pb, po) = (a.pointer, b.pointer, out.pointer)
        Parallel.forRange(a.count, grain: 1 << 15) { r in SIMDLoop.zip(pa, pb, po, r) { ($0 + $1).replacing(with: 0, where: $0 + $1 .< 0) } }
        output = ctx.recordForBackward ? out : nil
        return out
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        var d = dy
        if relu {
            guard let out = output else { preconditionFailure("Residual.backward without a recorded forward") }
            d = Tensor(uninitialized: dy.shape)
            let (py, pdy, pd) = (out.pointer, dy.pointer, d.pointer)
            Parallel.forRange(dy.count, grain: 1 << 15) { r in SIMDLoop.zip(py, pdy, pd, r) { y, g in g.replacing(with: 0, where: y .<= 0) } }
            output = nil
        }
        let dx = main.backward(d, ctx)
        Elementwise.accumulate(dx, shortcut?.backward(d, ctx) ?? d)
        return dx
    }
}
