/// out = post(main(x) + shortcut(x)): ResNet blocks (post = ReLU, shortcut = downsample or identity) and
/// MobileNetV2's inverted residuals (no post, identity shortcut).
public final class Residual: Layer {
    public let main: Layer
    public let shortcut: Layer?
    public let post: Layer?

    public init(main: Layer, shortcut: Layer? = nil, post: Layer? = nil) {
        self.main = main
        self.shortcut = shortcut
        self.post = post
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor {
        let sum = Elementwise.add(main.forward(x, ctx), shortcut?.forward(x, ctx) ?? x)
        return post?.forward(sum, ctx) ?? sum
    }

    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor {
        let d = post?.backward(dy, ctx) ?? dy
        let dx = main.backward(d, ctx)
        Elementwise.accumulate(dx, shortcut?.backward(d, ctx) ?? d)
        return dx
    }
}
