import ArgumentParser
import Foundation
import NN

/// Exports formula weights as a checkpoint, or runs a model on the formula input: the Gigapatch side of the PyTorch cross-check.
struct CrossCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crosscheck",
        abstract: "Export formula-weight checkpoints and print model outputs for the PyTorch cross-check (Tests/NNTests/Fixtures).")

    @Option(help: "Model: a backbone name or patchgd_head.") var model: String
    @Option(help: "Output size of a backbone, or classes of the head.") var outputs: Int = 256
    @Option(help: "Head latent channels and features.") var latent: Int = 8
    @Option(help: "Head features.") var features: Int = 16
    @Option(help: "Input shape, comma-separated (NCHW).") var input: String = "2,3,64,64"
    @Option(help: "Write the formula-weight checkpoint here.") var export: String?
    @Option(help: "Load these weights instead of the formula.") var weights: String?
    @Flag(help: "Run in training mode (batch statistics).") var train = false

    func run() throws {
        let net: Model
        if model == "patchgd_head" {
            net = PatchGDHead.make(latent: latent, features: features, classes: outputs)
        } else {
            guard let backbone = Model.backbone(model, outputs: outputs) else { throw ValidationError("unknown model \(model)") }
            net = backbone
        }
        FormulaWeights.fill(net)
        if let weights { try net.load(from: weights) }
        if let export { try net.save(to: export) }
        let shape = input.split(separator: ",").compactMap { Int($0) }
        let y = net.forward(FormulaWeights.input(shape), Context(training: train))
        print(String(decoding: try JSONSerialization.data(withJSONObject: ["shape": y.shape, "values": y.array.map(Double.init)]), as: UTF8.self))
    }
}
