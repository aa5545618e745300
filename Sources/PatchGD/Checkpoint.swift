import Foundation
import NN
import Stain

/// What a checkpoint must say so `gigapatch-predict` can rebuild the models and read patches the same way.
public struct CheckpointInfo: Sendable, Equatable, Codable {
    public var method: MethodChoice
    public var backbone: String
    public var latent: Int
    public var headFeatures: Int
    public var headDropout: Double
    public var classes: Int
    public var loss: LossKind
    public var normalization: Normalization
    public var patchSize: Int
    public var imageSize: Int
    public var maxGrid: Int
    public var oversize: OversizePolicy
    public var dataset: String
    public var tilingID: Int64
    /// The tiling's parameters (JSON), so a different index can be checked for the same tiling.
    public var tilingParams: String
    /// The tiling's identity (`TilingIdentity`); nil in checkpoints from before identities (matched by parameters).
    public var tilingIdentity: String?
    public var splitScheme: String
    public var selectBy: SelectBy
    /// The head's strides; nil in checkpoints from before the option (the reference's fixed strides).
    public var headStrides: HeadStrides? = nil
    /// The stain normalisation applied to every patch as it is read (nil: none), so prediction applies the same.
    public var stain: StainTarget? = nil
    /// Median microns per pixel of the training slides that state it (nil: none did), so prediction on new slides can
    /// name those scanned at another resolution.
    public var trainingMPP: Double? = nil
}

/// Where training stands: epochs finished and the best validation score so far.
public struct TrainerState: Sendable, Equatable, Codable {
    public var epochsDone: Int
    public var bestScore: Double?
    public var bestEpoch: Int?
    public var runID: Int64?
}

/// A training checkpoint: the models' weights (`backbone.*`, `head.*` with PyTorch state_dict names) in one
/// safetensors file whose metadata holds `CheckpointInfo` and `TrainerState` as JSON, and the optimizers' moments
/// in `<name>.e<epoch>.optimizer.safetensors` beside it, which the weights' metadata names (`optimizer_file`).
///
/// One atomic unit: the optimizer state is written first under its epoch's own name, then the weights file that
/// names it replaces the old one (the commit), then older optimizer files are removed. A process killed anywhere in
/// between leaves the old weights naming the old, still present, optimizer state. Checkpoints from before this
/// scheme (`<name>.optimizer.safetensors`, no `optimizer_file`) still load.
enum Checkpoint {
    /// The optimizer state of the checkpoint at `path`: the file its metadata names, else the older fixed name.
    static func optimizerPath(_ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        if let named = (try? Safetensors.read(path))?.metadata["optimizer_file"] { return (folder as NSString).appendingPathComponent(named) }
        return legacyOptimizerPath(path)
    }

    static func legacyOptimizerPath(_ path: String) -> String {
        String(path.dropLast(".safetensors".count)) + ".optimizer.safetensors"
    }

    /// The optimizer file name for the checkpoint at `path` after `epoch` epochs.
    static func optimizerName(_ path: String, epoch: Int) -> String {
        String((path as NSString).lastPathComponent.dropLast(".safetensors".count)) + ".e\(epoch).optimizer.safetensors"
    }

    /// Optimizer files of the checkpoint at `path` other than `keep` (older epochs, the fixed name of before).
    static func staleOptimizerFiles(_ path: String, keeping keep: String) -> [String] {
        let folder = (path as NSString).deletingLastPathComponent
        let stem = String((path as NSString).lastPathComponent.dropLast(".safetensors".count))
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? []
        return names.filter { name in
            name != keep && (name == stem + ".optimizer.safetensors" || (name.hasPrefix(stem + ".e") && name.hasSuffix(".optimizer.safetensors")))
        }.map { (folder as NSString).appendingPathComponent($0) }
    }

    /// Writes the checkpoint; `beforeCommit` runs between the optimizer state and the weights (tests: a kill there).
    static func save(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)], info: CheckpointInfo, state: TrainerState,
                     to path: String, beforeCommit: () throws -> Void = {}) throws {
        let optimizers = parts.compactMap { part in part.optimizer.map { (prefix: part.prefix, optimizer: $0) } }
        precondition(optimizers.count == parts.count, "a training checkpoint needs every model's optimizer")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let infoJSON = String(decoding: try encoder.encode(info), as: UTF8.self)
        let stateJSON = String(decoding: try encoder.encode(state), as: UTF8.self)
        var optimizerMeta = ["epochs_done": String(state.epochsDone)]
        for part in optimizers {
            optimizerMeta[part.prefix + "optimizer"] = part.optimizer.kind.name
            optimizerMeta[part.prefix + "step"] = String(part.optimizer.stepCount)
        }
        let optimizerFile = optimizerName(path, epoch: state.epochsDone)
        let folder = (path as NSString).deletingLastPathComponent
        try Safetensors.write(optimizers.flatMap { $0.optimizer.tensors(prefix: $0.prefix) }, metadata: optimizerMeta,
                              to: (folder as NSString).appendingPathComponent(optimizerFile))
        try beforeCommit()
        try Safetensors.write(parts.flatMap { $0.model.tensors(prefix: $0.prefix) },
                              metadata: ["gigapatch": infoJSON, "trainer_state": stateJSON, "format": "pt", "optimizer_file": optimizerFile,
                                         "architecture": "\(info.method.rawValue):\(info.backbone)"], to: path)
        for stale in staleOptimizerFiles(path, keeping: optimizerFile) { try? FileManager.default.removeItem(atPath: stale) }
    }

    /// Reads the metadata of a checkpoint.
    /// - Throws: `TrainingError` when the file is not a Gigapatch training checkpoint.
    static func info(_ path: String) throws -> (info: CheckpointInfo, state: TrainerState, tensors: [String: Safetensors.Entry]) {
        let (tensors, metadata) = try Safetensors.read(path)
        guard let infoJSON = metadata["gigapatch"], let stateJSON = metadata["trainer_state"],
              let info = try? JSONDecoder().decode(CheckpointInfo.self, from: Data(infoJSON.utf8)),
              let state = try? JSONDecoder().decode(TrainerState.self, from: Data(stateJSON.utf8)) else {
            throw TrainingError("\(path): not a Gigapatch training checkpoint (no 'gigapatch' metadata); give a file from RUNDIR/checkpoints", kind: .corrupt)
        }
        return (info, state, tensors)
    }

    /// Loads weights into the models, and optimizer state when `optimizers` is true; returns the trainer state.
    static func load(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)], from path: String, optimizers: Bool) throws -> TrainerState {
        let (_, state, tensors) = try info(path)
        for part in parts { try part.model.load(tensors, prefix: part.prefix, path: path) }
        guard optimizers else { return state }
        let statePath = optimizerPath(path)
        guard FileManager.default.fileExists(atPath: statePath) else {
            throw TrainingError("\(statePath): the optimizer state of \(path) is missing; start the run again (or train on from it with --init)", kind: .missingFile)
        }
        let (moments, meta) = try Safetensors.read(statePath)
        guard meta["epochs_done"] == String(state.epochsDone) else {
            throw TrainingError("\(statePath): optimizer state is from epoch \(meta["epochs_done"] ?? "?") but the weights are from epoch \(state.epochsDone) (interrupted while saving?); resume from best.safetensors or start again")
        }
        for part in parts {
            guard let optimizer = part.optimizer else { preconditionFailure("loading optimizer state into a method built without optimizers") }
            guard meta[part.prefix + "optimizer"] == optimizer.kind.name, let step = meta[part.prefix + "step"].flatMap(Int.init) else {
                throw TrainingError("\(statePath): optimizer state is for \(meta[part.prefix + "optimizer"] ?? "?"), the run uses \(optimizer.kind.name); resume with the run's own --optimizer")
            }
            try optimizer.load(moments, prefix: part.prefix, path: statePath, step: step)
        }
        return state
    }
}
