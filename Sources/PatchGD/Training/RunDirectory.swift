import Basics
import Foundation
import NN
import PatchIndex

/// One epoch's line in `metrics.jsonl` (and a row of `metrics.csv`).
public struct EpochMetrics: Sendable, Equatable, Codable {
    public var epoch: Int
    public var trainLoss: Double
    public var trainAccuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var valKappa: Double?
    public var valConfusion: [[Int]]?
    public var learningRate: Double
    public var seconds: Double
    public var patchesPerSecond: Double
    public var peakRSSMB: Double
    /// Curriculum: the resolution (224 scale) of the epoch's last stage.
    public var stageResolution: Int?
    /// Fraction of the run's compute spent by the end of the epoch.
    public var compute: Double?
    /// Patches that could not be read so far in the run (read as background); nil when none.
    public var badPatches: Int?
    /// Ranks of a data-parallel run (nil: one process); `patchesPerSecond` is then the sum over them.
    public var ranks: Int?
    /// Seconds rank 0 spent in gradient all-reduces this epoch (data-parallel runs).
    public var allReduceSeconds: Double?

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss", valAccuracy = "val_accuracy"
        case valKappa = "val_kappa", valConfusion = "val_confusion", learningRate = "lr", seconds
        case patchesPerSecond = "patches_per_s", peakRSSMB = "peak_rss_mb", stageResolution = "stage_resolution", compute
        case badPatches = "bad_patches", ranks, allReduceSeconds = "allreduce_seconds"
    }

    static let csvHeader = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_kappa,lr,seconds,patches_per_s,peak_rss_mb,compute,stage_resolution,bad_patches"

    var csvRow: String {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        return [String(epoch), f(trainLoss), f(trainAccuracy), f(valLoss), f(valAccuracy), f(valKappa), f(learningRate), f(seconds),
                f(patchesPerSecond), f(peakRSSMB), f(compute), stageResolution.map(String.init) ?? "", badPatches.map(String.init) ?? ""].joined(separator: ",")
    }
}

/// A training run's folder and its row in the index: `options.json`, `metrics.jsonl` / `metrics.csv`,
/// `checkpoints/{last,best}.safetensors` (with optimizer state beside each) and the `runs` row's status.
/// Every file is written through `AtomicFile` (synced, renamed, folder synced).
struct RunDirectory {
    let root: String
    var checkpoints: String { (root as NSString).appendingPathComponent("checkpoints") }
    var lastPath: String { (checkpoints as NSString).appendingPathComponent("last.safetensors") }
    var bestPath: String { (checkpoints as NSString).appendingPathComponent("best.safetensors") }
    var metricsPath: String { (root as NSString).appendingPathComponent("metrics.jsonl") }
    var csvPath: String { (root as NSString).appendingPathComponent("metrics.csv") }
    var optionsPath: String { (root as NSString).appendingPathComponent("options.json") }
    var badPatchesPath: String { (root as NSString).appendingPathComponent("bad-patches.csv") }

    /// Checks the folder fits the request (a new run must not overwrite one, a resumed run needs its checkpoint),
    /// creates it, removes temporary files of a killed earlier writer, and saves the run's options.
    func prepare(resume: Bool, options: TrainConfig) throws {
        let fm = FileManager.default
        if resume {
            guard fm.fileExists(atPath: lastPath) else {
                throw TrainingError("\(lastPath): no checkpoint to resume from; run without --resume to start \(root)", kind: .missingFile)
            }
        } else if fm.fileExists(atPath: lastPath) {
            throw TrainingError("\(root) already holds a run (checkpoints/last.safetensors); continue it with --resume or choose another --out", kind: .badOption)
        }
        do { try fm.createDirectory(atPath: checkpoints, withIntermediateDirectories: true) } catch {
            throw TrainingError("\(root): cannot create the run directory (\(error)); check the path is writable", kind: .unwritable)
        }
        AtomicFile.removeStaleTemporaries(inFolder: root)
        AtomicFile.removeStaleTemporaries(inFolder: checkpoints)
        try atomicWrite(try options.json() + "\n", to: optionsPath)
    }

    /// The epochs recorded so far.
    func history() throws -> [EpochMetrics] {
        guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return [] }
        do {
            return try text.split(separator: "\n").map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
        } catch {
            throw TrainingError("\(metricsPath): unreadable metrics line (\(error)); remove the broken line or start a new run", kind: .corrupt)
        }
    }

    /// Commits an epoch: the metrics first (with this epoch), then the best checkpoint when it improved, then the last
    /// one, whose weights file is the commit point. Killed before it, the run resumes from the previous epoch and
    /// keeps only the metrics of the epochs its checkpoint holds (`history` filtered on resume), so the two always
    /// agree; killed after it, both hold the epoch. `fault` (tests) is called at each step.
    func commit(epoch parts: [(prefix: String, model: Model, optimizer: Optimizer?)], info: CheckpointInfo, state: TrainerState,
                improved: Bool, history: [EpochMetrics], fault: ((CommitPoint) throws -> Void)? = nil) throws {
        try writeMetrics(history)
        try fault?(.afterMetrics)
        if improved { try Checkpoint.save(parts, info: info, state: state, to: bestPath) }
        try Checkpoint.save(parts, info: info, state: state, to: lastPath) { try fault?(.beforeLastWeights) }
        try fault?(.afterLastWeights)
    }

    /// Where a commit can be interrupted (tests).
    enum CommitPoint: Sendable, CaseIterable { case afterMetrics, beforeLastWeights, afterLastWeights }

    func writeMetrics(_ history: [EpochMetrics]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let lines = try history.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try atomicWrite(lines.joined(separator: "\n") + "\n", to: metricsPath)
        try atomicWrite(([EpochMetrics.csvHeader] + history.map(\.csvRow)).joined(separator: "\n") + "\n", to: csvPath)
    }

    /// Loads the last checkpoint (weights and optimizer state) and returns where training stands.
    func resume(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)]) throws -> TrainerState {
        try Checkpoint.load(parts, from: lastPath, optimizers: true)
    }

    /// The run's row in the index: the one the checkpoint names when it is still there (marked running again),
    /// otherwise a new one.
    func beginRun(index: PatchIndex, datasetID: Int64, state: TrainerState, options: TrainConfig) throws -> Int64 {
        if let existing = state.runID, (try? index.run(id: existing)) != nil {
            try index.finishRun(id: existing, status: "running")
            return existing
        }
        return try index.beginRun(datasetID: datasetID, name: (root as NSString).lastPathComponent, directory: absolute(root),
                                  method: options.method.rawValue, paramsJSON: try options.json())
    }
}

/// Writes text to `path` atomically and durably.
func atomicWrite(_ text: String, to path: String) throws {
    do { try AtomicFile.write(text, to: path) } catch { throw TrainingError("\(error)", kind: .unwritable) }
}

/// An absolute, standardised path.
func absolute(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.path
}
