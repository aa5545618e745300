/// Renders any rectangle of an UltraMNIST image from its layout: background noise (or black), digits XOR-ed on top.
public struct UltraMNISTRenderer: Sendable {
    /// The MNIST file the layout's digit indices refer to.
    public let mnist: MNISTSet

    public init(mnist: MNISTSet) { self.mnist = mnist }

    /// Fills `width` x `height` gray pixels of `layout` at image position (x, y) into `out` (row stride `stride`).
    ///
    /// - Parameter digits: false renders the background alone (tests compare the two).
    public func render(_ layout: ImageLayout, x: Int, y: Int, width: Int, height: Int,
                       into out: UnsafeMutablePointer<UInt8>, stride: Int, digits: Bool = true) {
        if let noise = layout.noise {
            noise.render(x: x, y: y, width: width, height: height, into: out, stride: stride)
        } else {
            for row in 0 ..< height { (out + row * stride).initialize(repeating: 0, count: width) }
        }
        guard digits else { return }
        let side28 = MNISTSet.side
        mnist.images.withUnsafeBufferPointer { images in
            for digit in layout.digits {
                let x0 = max(x, digit.x), x1 = min(x + width, digit.x + digit.side)
                let y0 = max(y, digit.y), y1 = min(y + height, digit.y + digit.side)
                guard x0 < x1, y0 < y1 else { continue }
                let base = digit.mnistIndex * side28 * side28
                for py in y0 ..< y1 {
                    let line = out + (py - y) * stride - x
                    let dy = py - digit.y
                    for px in x0 ..< x1 {
                        let dx = px - digit.x
                        let value: UInt8
                        if digit.side == 14 {
                            // Half-size digit: 2 x 2 average of the 28 x 28 image.
                            let i = base + 2 * dy * side28 + 2 * dx
                            let top: Int = Int(images[i]) + Int(images[i + 1])
                            let bottom: Int = Int(images[i + side28]) + Int(images[i + side28 + 1])
                            value = UInt8((top + bottom + 2) / 4)
                        } else {
                            // Upscaled by pixel replication.
                            value = images[base + (dy / digit.scale) * side28 + dx / digit.scale]
                        }
                        line[px] ^= value
                    }
                }
            }
        }
    }
}
