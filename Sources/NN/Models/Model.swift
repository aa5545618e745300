/// A network with its own parameter store: a backbone (image to feature vector) or the PatchGD head.
public final class Model {
    /// Architecture name as saved in checkpoints (`resnet18`, `mobilenet_v2`, `tiny`, `patchgd_head`, ...).
    public let architecture: String
    public let store: ParameterStore
    public let network: Layer
    /// Size of the output vector per example.
    public let outputs: Int

    init(architecture: String, store: ParameterStore, network: Layer, outputs: Int, seed: UInt64) {
        self.architecture = architecture
        self.store = store
        self.network = network
        self.outputs = outputs
        store.finalize(seed: seed)
    }

    public func forward(_ x: Tensor, _ ctx: Context) -> Tensor { network.forward(x, ctx) }

    /// Back-propagates `dy`, accumulating into the store's gradients; returns the input's gradient (zeros when
    /// `computesInputGradient` is off).
    @discardableResult
    public func backward(_ dy: Tensor, _ ctx: Context) -> Tensor { network.backward(dy, ctx) }

    /// Whether backward computes the gradient of the model's input. Backbones start with it off (their input is an
    /// image; the stem convolution's input gradient was 4% of a resnet18 step); the PatchGD head keeps it, as the
    /// recomputed patches' gradients flow through it.
    public var computesInputGradient: Bool {
        get { stem?.computesInputGradient ?? true }
        set { stem?.computesInputGradient = newValue }
    }

    /// The first layer when it is a convolution.
    private var stem: Conv2d? { (network as? Sequential)?.layers.first as? Conv2d }

    /// Backbones by name, their final layer a linear projection to `outputs` (PatchGD's latent size).
    public static let backbones = ["tiny", "resnet18", "resnet34", "resnet50", "mobilenet_v2"]

    /// Builds a backbone by name; nil for an unknown name.
    public static func backbone(_ name: String, outputs: Int = 256, seed: UInt64 = 0) -> Model? {
        let model = make(name, outputs: outputs, seed: seed)
        model?.computesInputGradient = false
        return model
    }

    static func make(_ name: String, outputs: Int, seed: UInt64) -> Model? {
        switch name {
        case "resnet18": return ResNet.make(name, blocks: [2, 2, 2, 2], bottleneck: false, outputs: outputs, seed: seed)
        case "resnet34": return ResNet.make(name, blocks: [3, 4, 6, 3], bottleneck: false, outputs: outputs, seed: seed)
        case "resnet50": return ResNet.make(name, blocks: [3, 4, 6, 3], bottleneck: true, outputs: outputs, seed: seed)
        case "mobilenet_v2": return MobileNetV2.make(outputs: outputs, seed: seed)
        case "tiny": return ResNet.tiny(outputs: outputs, seed: seed)
        default: return nil
        }
    }
}

/// ResNets with torchvision's layout and state_dict names (conv1, bn1, layer1.0.conv1, ..., layerN.0.downsample.0/1, fc).
enum ResNet {
    /// torchvision's init: convolutions kaiming-normal (fan_out, ReLU gain), BatchNorm weight 1 bias 0, fc PyTorch's default.
    static func conv(_ s: ParameterStore, _ name: String, _ i: Int, _ o: Int, k: Int, stride: Int = 1) -> Conv2d {
        Conv2d(s, name, in: i, out: o, kernel: k, stride: stride, padding: k / 2, bias: false,
               initializer: .normal(std: (2 / Float(o * k * k)).squareRoot()))
    }

    static func basic(_ s: ParameterStore, _ name: String, _ i: Int, _ o: Int, stride: Int) -> Layer {
        let main = Sequential([conv(s, "\(name).conv1", i, o, k: 3, stride: stride), BatchNorm2d(s, "\(name).bn1", channels: o, activation: .relu),
                               conv(s, "\(name).conv2", o, o, k: 3), BatchNorm2d(s, "\(name).bn2", channels: o)])
        let down = stride != 1 || i != o
            ? Sequential([conv(s, "\(name).downsample.0", i, o, k: 1, stride: stride), BatchNorm2d(s, "\(name).downsample.1", channels: o)]) : nil
        return Residual(main: main, shortcut: down, relu: true)
    }

    /// Bottleneck (ResNet v1.5: the stride is on the 3x3 convolution), expansion 4.
    static func bottleneck(_ s: ParameterStore, _ name: String, _ i: Int, _ width: Int, stride: Int) -> Layer {
        let o = width * 4
        let main = Sequential([conv(s, "\(name).conv1", i, width, k: 1), BatchNorm2d(s, "\(name).bn1", channels: width, activation: .relu),
                               conv(s, "\(name).conv2", width, width, k: 3, stride: stride), BatchNorm2d(s, "\(name).bn2", channels: width, activation: .relu),
                               conv(s, "\(name).conv3", width, o, k: 1), BatchNorm2d(s, "\(name).bn3", channels: o)])
        let down = stride != 1 || i != o
            ? Sequential([conv(s, "\(name).downsample.0", i, o, k: 1, stride: stride), BatchNorm2d(s, "\(name).downsample.1", channels: o)]) : nil
        return Residual(main: main, shortcut: down, relu: true)
    }

    static func make(_ name: String, blocks: [Int], bottleneck isBottleneck: Bool, outputs: Int, seed: UInt64) -> Model {
        let s = ParameterStore()
        var layers: [Layer] = [conv(s, "conv1", 3, 64, k: 7, stride: 2), BatchNorm2d(s, "bn1", channels: 64, activation: .relu),
                               MaxPool2d(kernel: 3, stride: 2, padding: 1)]
        var channels = 64
        for (stage, count) in blocks.enumerated() {
            let width = 64 << stage
            for b in 0 ..< count {
                let stride = b == 0 && stage > 0 ? 2 : 1
                let blockName = "layer\(stage + 1).\(b)"
                if isBottleneck {
                    layers.append(bottleneck(s, blockName, channels, width, stride: stride))
                    channels = width * 4
                } else {
                    layers.append(basic(s, blockName, channels, width, stride: stride))
                    channels = width
                }
            }
        }
        layers += [AvgPool2d(adaptive: 1, 1), Flatten(), Linear(s, "fc", in: channels, out: outputs)]
        return Model(architecture: name, store: s, network: Sequential(layers), outputs: outputs, seed: seed)
    }

    /// `tiny`: a small residual network for fast CPU runs and tests.
    ///
    /// conv1 3x3/2 (3 -> 32), bn1, ReLU; layer1: one basic block 32 -> 32; layer2: one basic block 32 -> 64, stride 2;
    /// layer3: one basic block 64 -> 128, stride 2; global average pool; fc 128 -> outputs. 340,384 parameters with 256 outputs;
    /// a 128 x 128 patch becomes 16 x 16 before pooling.
    static func tiny(outputs: Int, seed: UInt64) -> Model {
        let s = ParameterStore()
        let layers: [Layer] = [conv(s, "conv1", 3, 32, k: 3, stride: 2), BatchNorm2d(s, "bn1", channels: 32, activation: .relu),
                               basic(s, "layer1.0", 32, 32, stride: 1), basic(s, "layer2.0", 32, 64, stride: 2),
                               basic(s, "layer3.0", 64, 128, stride: 2),
                               AvgPool2d(adaptive: 1, 1), Flatten(), Linear(s, "fc", in: 128, out: outputs)]
        return Model(architecture: "tiny", store: s, network: Sequential(layers), outputs: outputs, seed: seed)
    }
}

/// MobileNetV2 with torchvision's layout and names (features.0 ... features.18, classifier.1).
enum MobileNetV2 {
    static func convBN(_ s: ParameterStore, _ name: String, _ i: Int, _ o: Int, k: Int, stride: Int = 1, groups: Int = 1, act: Bool = true) -> [Layer] {
        let conv = Conv2d(s, "\(name).0", in: i, out: o, kernel: k, stride: stride, padding: (k - 1) / 2, groups: groups, bias: false,
                          initializer: .normal(std: (2 / Float(o * k * k)).squareRoot()))
        return [conv, BatchNorm2d(s, "\(name).1", channels: o, activation: act ? .relu6 : .none)]
    }

    static func make(outputs: Int, seed: UInt64) -> Model {
        let s = ParameterStore()
        var layers: [Layer] = convBN(s, "features.0", 3, 32, k: 3, stride: 2)
        var channels = 32, index = 1
        for (t, c, n, stride) in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)] {
            for b in 0 ..< n {
                let name = "features.\(index).conv", st = b == 0 ? stride : 1, hidden = channels * t
                var block: [Layer] = []
                var next = 0
                if t != 1 {
                    block += convBN(s, "\(name).0", channels, hidden, k: 1)
                    next = 1
                }
                block += convBN(s, "\(name).\(next)", hidden, hidden, k: 3, stride: st, groups: hidden)
                block.append(Conv2d(s, "\(name).\(next + 1)", in: hidden, out: c, kernel: 1, bias: false,
                                    initializer: .normal(std: (2 / Float(c)).squareRoot())))
                block.append(BatchNorm2d(s, "\(name).\(next + 2)", channels: c))
                layers.append(st == 1 && channels == c ? Residual(main: Sequential(block)) : Sequential(block))
                channels = c
                index += 1
            }
        }
        layers += convBN(s, "features.18", 320, 1280, k: 1)
        layers += [AvgPool2d(adaptive: 1, 1), Flatten(), Dropout(p: 0.2),
                   Linear(s, "classifier.1", in: 1280, out: outputs, initializer: .normal(std: 0.01))]
        return Model(architecture: "mobilenet_v2", store: s, network: Sequential(layers), outputs: outputs, seed: seed)
    }
}

/// The PatchGD head (reference implementation's): classifies a latent grid Z (N, C, m, n).
///
/// blocks.0: Conv3x3(C -> F, stride 1) -> ReLU -> BatchNorm -> Dropout2d(0.2); blocks.1-3: the same with F -> F, stride 2
/// (with `adaptiveStrides`, only while the input is at least 4 x 4, so a 4 x 4 grid keeps 2 x 2 maps; a 16 x 16 grid is
/// strided as by the reference, and the weights are the same either way); adaptive average pooling to 2 x 2, flatten,
/// fc: Linear(4F -> classes). On a 16 x 16 grid the pooling is the identity.
public enum PatchGDHead {
    public static func make(latent c: Int = 256, features f: Int = 256, classes: Int, dropout: Float = 0.2, adaptiveStrides: Bool = false,
                            seed: UInt64 = 0) -> Model {
        let s = ParameterStore()
        var layers: [Layer] = []
        for b in 0 ..< 4 {
            let conv = Conv2d(s, "blocks.\(b).0", in: b == 0 ? c : f, out: f, kernel: 3, stride: b == 0 ? 1 : 2, padding: 1)
            layers += [b > 0 && adaptiveStrides ? AdaptiveStrideConv2d(conv) : conv,
                       ReLU(), BatchNorm2d(s, "blocks.\(b).2", channels: f), Dropout(p: dropout, channels: true)]
        }
        layers += [AvgPool2d(adaptive: 2, 2), Flatten(), Linear(s, "fc", in: 4 * f, out: classes)]
        return Model(architecture: "patchgd_head", store: s, network: Sequential(layers), outputs: classes, seed: seed)
    }
}
