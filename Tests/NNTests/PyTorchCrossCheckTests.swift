import Foundation
import NN
import Testing

/// Numbers from PyTorch/torchvision, made by Fixtures/make_fixtures.py (which also checked both directions of weight
/// exchange with the real binaries); these tests need no PyTorch.
struct PyTorchCrossCheckTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    struct Fixture: Decodable {
        struct Entry: Decodable {
            let input_shape: [Int]
            let eval: [Float]
            let train: [Float]?
            let state_dict: [[StringOrShape]]
            let gigapatch_to_pytorch_max_rel: Double
            let pytorch_to_gigapatch_max_rel: Double
        }
        let models: [String: Entry]
    }

    enum StringOrShape: Decodable {
        case string(String), shape([Int])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .string(s) } else { self = .shape(try c.decode([Int].self)) }
        }
    }

    static func fixture() throws -> Fixture {
        try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: folder.appendingPathComponent("pytorch_fixtures.json")))
    }

    static func model(_ name: String) -> Model {
        name == "patchgd_head" ? PatchGDHead.make(latent: 8, features: 16, classes: 6) : Model.backbone(name, outputs: 256)!
    }

    /// Largest difference relative to the reference's largest magnitude.
    static func relative(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max()! / b.map(abs).max()!
    }

    @Test(arguments: ["resnet18", "mobilenet_v2", "patchgd_head"])
    func namesShapesAndOutputsMatchPyTorch(name: String) throws {
        let entry = try #require(try Self.fixture().models[name])
        let model = Self.model(name)
        // The state_dict: same names in the same order, same shapes, float32 except num_batches_tracked (int64).
        let ours = model.store.entries.map { e in "\(e.name) \(e.shape) \(e.kind == .counter ? "int64" : "float32")" }
        let theirs = entry.state_dict.map { row -> String in
            guard case .string(let n) = row[0], case .shape(let s) = row[1], case .string(let t) = row[2] else { return "?" }
            return "\(n) \(s) \(t)"
        }
        #expect(ours == theirs)
        // Outputs with the same (formula) weights, evaluation and training mode.
        FormulaWeights.fill(model)
        let x = FormulaWeights.input(entry.input_shape)
        #expect(Self.relative(model.forward(x, Context(training: false)).array, entry.eval) < 1e-4)
        if let train = entry.train {
            let y = name == "patchgd_head" ? Self.headWithoutDropout(model, x) : model.forward(x, Context(training: true))
            #expect(Self.relative(y.array, train) < 1e-4)
        }
        // Both exchange directions were checked against the binaries when the fixture was made.
        #expect(entry.gigapatch_to_pytorch_max_rel < 1e-4 && entry.pytorch_to_gigapatch_max_rel < 1e-4)
    }

    /// The head in training mode with its Dropout2d layers off, as the fixture was made (batch statistics only).
    static func headWithoutDropout(_ model: Model, _ x: Tensor) -> Tensor {
        let seq = model.network as! Sequential
        let ctx = Context(training: true)
        var y = x
        for layer in seq.layers {
            y = layer is Dropout ? y : layer.forward(y, ctx)
        }
        return y
    }

    /// A safetensors file written by PyTorch (safetensors.torch.save_file of the head's state_dict) loads and matches.
    @Test func pytorchWrittenFileLoads() throws {
        let entry = try #require(try Self.fixture().models["patchgd_head"])
        let model = Self.model("patchgd_head")
        try model.load(from: Self.folder.appendingPathComponent("patchgd_head-pytorch.safetensors").path)
        let y = model.forward(FormulaWeights.input(entry.input_shape), Context(training: false))
        #expect(Self.relative(y.array, entry.eval) < 1e-4)
    }
}
