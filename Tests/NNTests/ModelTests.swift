import Foundation
import NN
import Seeded
import Testing

struct ModelTests {
    /// torchvision's parameter counts (with their 1000-class fc) minus that fc, plus our 256-wide projection.
    @Test(arguments: [("resnet18", 11_689_512 - 513_000 + 131_328), ("resnet34", 21_797_672 - 513_000 + 131_328),
                      ("resnet50", 25_557_032 - 2_049_000 + 524_544), ("mobilenet_v2", 3_504_872 - 1_281_000 + 327_936)])
    func parameterCountsMatchTorchvision(name: String, expected: Int) throws {
        let model = try #require(Model.backbone(name, outputs: 256))
        #expect(model.store.parameterCount == expected)
    }

    @Test func namesFollowTorchvisionStateDicts() throws {
        let r = try #require(Model.backbone("resnet18"))
        for name in ["conv1.weight", "bn1.running_var", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                     "layer2.0.downsample.1.bias", "layer4.1.bn2.weight", "fc.weight", "fc.bias"] {
            #expect(r.store.entry(name) != nil, "resnet18 lacks \(name)")
        }
        #expect(r.store.entry("layer1.0.downsample.0.weight") == nil)
        let m = try #require(Model.backbone("mobilenet_v2"))
        for name in ["features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight", "features.1.conv.1.weight",
                     "features.1.conv.2.bias", "features.2.conv.0.0.weight", "features.2.conv.1.0.weight", "features.2.conv.3.weight",
                     "features.18.0.weight", "classifier.1.weight"] {
            #expect(m.store.entry(name) != nil, "mobilenet_v2 lacks \(name)")
        }
        #expect(m.store.entry("features.2.conv.1.0.weight")?.shape == [96, 1, 3, 3])
    }

    @Test func outputShapes() throws {
        let ctx = Context(training: false)
        for name in Model.backbones where name != "resnet50" && name != "resnet34" {
            let model = try #require(Model.backbone(name, outputs: 32))
            let y = model.forward(Tensor(shape: [2, 3, 64, 64]), ctx)
            #expect(y.shape == [2, 32], "\(name)")
        }
        let head = PatchGDHead.make(latent: 16, features: 8, classes: 6)
        #expect(head.forward(Tensor(shape: [2, 16, 16, 16]), ctx).shape == [2, 6])
        #expect(head.forward(Tensor(shape: [1, 16, 5, 7]), ctx).shape == [1, 6])   // grids of any size
    }

    /// A small network overfits a tiny batch: the loss falls by at least 10x.
    @Test func tinyOverfitsATinyBatch() throws {
        let model = try #require(Model.backbone("tiny", outputs: 4, seed: 1))
        var rng = SplitMix64(seed: 2)
        let x = Tensor(shape: [8, 3, 32, 32], values: (0 ..< 8 * 3 * 32 * 32).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let targets = [0, 1, 2, 3, 0, 1, 2, 3]
        let optimizer = Optimizer(.adamW(), store: model.store, learningRate: 3e-3, weightDecay: 0)
        let ctx = Context(training: true)
        var first: Float = 0, last: Float = 0
        for step in 0 ..< 60 {
            model.store.zeroGradients()
            let result = CrossEntropy.compute(logits: model.forward(x, ctx), targets: targets)
            model.backward(result.gradient, ctx)
            optimizer.step()
            if step == 0 { first = result.loss }
            last = result.loss
        }
        #expect(last < first / 10, "loss \(first) -> \(last)")
    }
}

struct OptimizerTests {
    /// A store with two parameters [1, -2] and fixed gradients [0.5, 0.25].
    static func store() -> ParameterStore {
        let s = ParameterStore()
        s.declare("w", shape: [2])
        s.finalize(seed: 0)
        s.values[0] = 1; s.values[1] = -2
        return s
    }

    static func setGradients(_ s: ParameterStore) { s.gradients[0] = 0.5; s.gradients[1] = 0.25 }

    @Test func sgdMomentumNesterovAndWeightDecay() {
        let s = Self.store()
        let opt = Optimizer(.sgd(momentum: 0.9, nesterov: false), store: s, learningRate: 0.1, weightDecay: 0.01)
        Self.setGradients(s); opt.step()
        // d = g + wd p = 0.51, buf = d (first step), p = 1 - 0.1 * 0.51
        #expect(abs(s.values[0] - 0.949) < 1e-6)
        Self.setGradients(s); opt.step()
        // d = 0.5 + 0.01 * 0.949 = 0.50949; buf = 0.9 * 0.51 + 0.50949 = 0.96849; p = 0.949 - 0.096849
        #expect(abs(s.values[0] - 0.852151) < 1e-6)
        let n = Self.store()
        let nesterov = Optimizer(.sgd(momentum: 0.9, nesterov: true), store: n, learningRate: 0.1)
        Self.setGradients(n); nesterov.step()
        // buf = 0.5; d = 0.5 + 0.9 * 0.5 = 0.95
        #expect(abs(n.values[0] - 0.905) < 1e-6)
    }

    @Test func adamAndAdamW() {
        let s = Self.store()
        let adam = Optimizer(.adam(), store: s, learningRate: 0.01, weightDecay: 0.1)
        Self.setGradients(s); adam.step()
        // first Adam step moves each weight by lr * sign(g + wd p) (bias-corrected m / sqrt(v) = +-1)
        #expect(abs(s.values[0] - 0.99) < 1e-5 && abs(s.values[1] - (-2 - 0.01)) < 1e-5)   // g1 = 0.25 - 0.2 = 0.05 > 0
        let w = Self.store()
        let adamW = Optimizer(.adamW(), store: w, learningRate: 0.01, weightDecay: 0.1)
        Self.setGradients(w); adamW.step()
        // decoupled: p * (1 - 0.001), then - 0.01
        #expect(abs(w.values[0] - (0.999 - 0.01)) < 1e-5 && abs(w.values[1] - (-1.998 - 0.01)) < 1e-5)
        Self.setGradients(w); adamW.step()
        #expect(adamW.stepCount == 2)
    }

    @Test func groupsHaveTheirOwnRates() {
        let s = ParameterStore()
        s.declare("backbone.w", shape: [1]); s.declare("head.w", shape: [1])
        s.finalize(seed: 0)
        let opt = Optimizer(.sgd(), store: s, groups: [ParameterGroup(name: "backbone", ranges: s.parameterRanges(prefix: "backbone."), learningRate: 0.1),
                                                       ParameterGroup(name: "head", ranges: s.parameterRanges(prefix: "head."), learningRate: 1)])
        s.gradients[0] = 1; s.gradients[1] = 1
        opt.step(scale: 0.5)
        #expect(s.values[0] == -0.05 && s.values[1] == -0.5)
    }

    @Test func schedules() {
        let w = Schedule.warmupLinear(warmup: 4, total: 12)
        #expect([0, 3, 4, 8, 12].map(w.factor) == [0.25, 1, 1, 0.5, 0])
        let c = Schedule.cosine(warmup: 0, total: 10)
        #expect(abs(c.factor(0) - 1) < 1e-6 && abs(c.factor(5) - 0.5) < 1e-6 && abs(c.factor(10)) < 1e-6)
        #expect(Schedule.step(every: 3, gamma: 0.1).factor(7) == Float(0.1) * Float(0.1))
    }

    @Test func clippingAndScaling() {
        let s = Self.store()
        s.gradients[0] = 3; s.gradients[1] = 4
        #expect(abs(s.clipGradients(maxNorm: 1) - 5) < 1e-6)
        #expect(abs(s.gradientNorm() - 1) < 1e-4)
        s.scaleGradients(2)
        #expect(abs(s.gradients[0] - 1.2) < 1e-4)
    }
}

struct WeightsTests {
    @Test func saveLoadRoundTripAndMetadata() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("w-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try #require(Model.backbone("tiny", outputs: 8, seed: 1))
        _ = a.forward(Tensor(shape: [2, 3, 32, 32], values: (0 ..< 6144).map { Float($0 % 17) / 17 }), Context(training: true))  // move running stats
        try a.save(to: "\(dir)/a.safetensors", metadata: ["classes": "4", "normalization": "mnist"])
        let b = try #require(Model.backbone("tiny", outputs: 8, seed: 99))
        let meta = try b.load(from: "\(dir)/a.safetensors")
        #expect(meta["architecture"] == "tiny" && meta["classes"] == "4")
        let x = Tensor(shape: [1, 3, 32, 32], values: (0 ..< 3072).map { Float($0 % 13) / 13 })
        #expect(a.forward(x, Context(training: false)).array == b.forward(x, Context(training: false)).array)
        #expect(b.store.counters == a.store.counters)

        let wrong = try #require(Model.backbone("tiny", outputs: 4))
        let error = try #require(throws: WeightsError.self) { try wrong.load(from: "\(dir)/a.safetensors") }
        #expect(error.message.contains("fc.weight has shape [8, 128], expected [4, 128]"))
        let other = try #require(Model.backbone("resnet18"))
        let mismatch = try #require(throws: WeightsError.self) { try other.load(from: "\(dir)/a.safetensors") }
        #expect(mismatch.message.contains("missing") && mismatch.message.contains("layer4.1.conv2.weight"))
        #expect(mismatch.message.contains("unexpected") == false || mismatch.message.contains("layer3"))
        try wrong.load(from: "\(dir)/a.safetensors", skipping: ["fc."])   // a new projection over a loaded backbone
    }

    @Test func optimizerStateRoundTrip() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("opt-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let s = OptimizerTests.store()
        let opt = Optimizer(.adamW(), store: s, learningRate: 0.01)
        OptimizerTests.setGradients(s); opt.step()
        try opt.save(to: path)
        let restored = Optimizer(.adamW(), store: s, learningRate: 0.01)
        try restored.load(from: path)
        #expect(restored.stepCount == 1 && Array(restored.moment1) == Array(opt.moment1) && Array(restored.moment2) == Array(opt.moment2))
        #expect(throws: WeightsError.self) { try Optimizer(.sgd(), store: s, learningRate: 1).load(from: path) }
    }
}

extension ModelTests {
    /// The documented size of `tiny` (README, Model.swift).
    @Test func tinyParameterCount() throws {
        #expect(try #require(Model.backbone("tiny", outputs: 256)).store.parameterCount == 340_384)
    }
}
