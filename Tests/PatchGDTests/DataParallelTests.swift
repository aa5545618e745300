import Foundation
import NN
import TestSupport
import Testing
@testable import PatchGD

/// Data-parallel training under mpirun (2 ranks over TCP on loopback) against one process. Skipped without Open MPI
/// (scripts/setup --tests installs it).
@Suite(.serialized) struct DataParallelTests {
    static let skip = Executables.mpirun == nil || Executables.directory == nil

    @Test func sharesCutTheBatchInOrderAndEvenly() {
        for size in 1 ... 4 {
            for count in 0 ... 9 {
                let shares = (0 ..< size).map { DataParallel.share(of: count, rank: $0, size: size) }
                #expect(shares.flatMap { Array($0) } == Array(0 ..< count), "count \(count), size \(size)")
                #expect((shares.map(\.count).max() ?? 0) - (shares.map(\.count).min() ?? 0) <= 1)
            }
        }
    }

    /// Options whose result is defined whatever the rank count: BatchNorm frozen, no dropout, SGD (Adam divides each
    /// gradient by its own running magnitude, so the rounding of sums in a different order, 1e-7 of a near-zero
    /// gradient, becomes a step of order lr). In-process runs keep the default thread count: `--workers` sets a
    /// process-wide count, which would change the rounding of tests running beside these (exact-resume compares bits).
    static func defined(_ f: TrainerFixture, _ out: String, method: MethodChoice, epochs: Int = 1) -> TrainConfig {
        var o = f.options(out, epochs: epochs)
        o.method = method
        o.imageSize = 64
        o.batchNorm = .frozen
        o.optimizer = .sgd
        o.lr = 0.05
        o.schedule = .constant
        o.warmup = 0
        o.augment = false
        return o
    }

    /// `extra`: command-line arguments beyond the config file (options that a file cannot hold, like --time-limit).
    static func mpiTrain(_ ranks: Int, _ o: TrainConfig, resume: Bool = false, extra: [String] = [],
                         environment: [String: String] = [:]) throws -> Executables.Result {
        var o = o
        o.workers = 1   // one thread per rank: 2 ranks on this machine's 2 cores
        let config = o.out + ".config.json"
        try FileManager.default.createDirectory(atPath: (config as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try o.json().write(toFile: config, atomically: true, encoding: .utf8)
        return try Executables.mpi(ranks, "train", ["--config", config] + (resume ? ["--resume"] : []) + extra, environment: environment)
    }

    /// Largest difference between two checkpoints' float tensors, relative to each tensor's largest magnitude.
    static func relativeDifference(_ a: String, _ b: String) throws -> (Float, String) {
        let x = try Safetensors.read(a).tensors, y = try Safetensors.read(b).tensors
        #expect(x.keys.sorted() == y.keys.sorted())
        var worst: (Float, String) = (0, "")
        for (name, t) in x where t.dtype == "F32" {
            let u = floats(t.data), v = floats(try #require(y[name]).data)
            let scale = max(u.map(abs).max() ?? 0, 1e-6)
            let d = zip(u, v).map { abs($0 - $1) }.max() ?? 0
            if d / scale > worst.0 { worst = (d / scale, name) }
        }
        return worst
    }

    static func floats(_ data: Data) -> [Float] {
        data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// 7 training images in batches of 4: shares of 2 + 2, then 2 + 1.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"), arguments: [MethodChoice.patchgd, .gd])
    func twoRanksTakeTheStepsOneProcessTakes(method: MethodChoice) throws {
        let f = try TrainerFixture.positional(train: 7, val: 3)
        let one = try Trainer(options: Self.defined(f, "one", method: method, epochs: 2)).run()
        let o = Self.defined(f, "two", method: method, epochs: 2)
        let two = try Self.mpiTrain(2, o)
        try #require(two.status == 0, "\(two.errors.suffix(2000))")
        #expect(two.errors.contains("2 ranks"), "\(two.errors.suffix(500))")
        let (worst, name) = try Self.relativeDifference(one.lastCheckpoint, o.out + "/checkpoints/last.safetensors")
        #expect(worst <= 1e-5, "\(name) differs by \(worst) of its largest value")
        let history = try RunDirectory(root: o.out).history()
        #expect(history.count == 2)
        for (a, b) in zip(one.epochs, history) {
            #expect(abs(a.trainLoss - b.trainLoss) <= 1e-5 * abs(a.trainLoss))
            #expect(a.trainAccuracy == b.trainAccuracy && a.valAccuracy == b.valAccuracy)
            #expect(b.ranks == 2)
        }
    }

    /// With BatchNorm training, each rank normalises its own share, so the run is not one process's; it must learn,
    /// and validate with the running statistics it saves (the ranks' mean), which one process then reproduces.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func withBatchNormTwoRanksLearnAndValidateWithTheSavedStatistics() throws {
        let f = try TrainerFixture.positional(train: 8, val: 4)
        var o = f.options("bn", epochs: 12)
        o.augment = false
        o.sampling = 0.5
        o.batchSize = 8
        let run = try Self.mpiTrain(2, o)
        try #require(run.status == 0, "\(run.errors.suffix(2000))")
        let history = try RunDirectory(root: o.out).history()
        try #require(history.count == 12)
        #expect(history.last!.trainLoss < history.first!.trainLoss, "\(history.map(\.trainLoss))")
        let predicted = try Predictor.run(PredictOptions(db: f.db, checkpoint: o.out + "/checkpoints/last.safetensors", out: f.dir.file("bn.csv")))
        let loss = predicted.predictions.map { -log($0.probabilities[$0.label!]) }.reduce(0, +) / Double(predicted.predictions.count)
        let logged = try #require(history.last!.valLoss)
        #expect(abs(loss - logged) <= 2e-5 * max(1, logged), "one process on the checkpoint: \(loss); the ranks logged \(logged)")
    }

    /// A run started on 2 ranks continues on 1, and one started alone continues on 2, as the uninterrupted run does.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func resumeChangesTheRankCount() throws {
        let f = try TrainerFixture.positional(train: 7, val: 3)
        let straight = try Trainer(options: Self.defined(f, "straight", method: .patchgd, epochs: 2)).run()

        let a = Self.defined(f, "two-then-one", method: .patchgd, epochs: 1)
        let started = try Self.mpiTrain(2, a)
        try #require(started.status == 0, "\(started.errors.suffix(2000))")
        var more = a
        more.epochs = 2
        let continued = try Trainer(options: more).run(resume: true)
        let (d1, n1) = try Self.relativeDifference(straight.lastCheckpoint, continued.lastCheckpoint)
        #expect(d1 <= 1e-5, "2 then 1 rank: \(n1) differs by \(d1)")

        let b = Self.defined(f, "one-then-two", method: .patchgd, epochs: 1)
        _ = try Trainer(options: b).run()
        var moreB = b
        moreB.epochs = 2
        let resumed = try Self.mpiTrain(2, moreB, resume: true)
        try #require(resumed.status == 0, "\(resumed.errors.suffix(2000))")
        #expect(resumed.errors.contains("resuming"))
        let (d2, n2) = try Self.relativeDifference(straight.lastCheckpoint, b.out + "/checkpoints/last.safetensors")
        #expect(d2 <= 1e-5, "1 then 2 ranks: \(n2) differs by \(d2)")
        #expect(try RunDirectory(root: b.out).history().map(\.epoch) == [1, 2])
    }

    /// Under --time-limit the ranks stop together after the same epoch (none hangs in a collective the other left)
    /// and the job exits 75; the run resumed in one process ends where the uninterrupted one does.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func ranksStopTogetherAtTheTimeLimit() throws {
        let f = try TrainerFixture.positional(train: 7, val: 3)
        let straight = try Trainer(options: Self.defined(f, "straight", method: .patchgd, epochs: 2)).run()
        let o = Self.defined(f, "limited", method: .patchgd, epochs: 2)
        let stopped = try Self.mpiTrain(2, o, extra: ["--time-limit", "0.001s"])
        #expect(stopped.status == 75, "\(stopped.errors.suffix(2000))")
        #expect(stopped.errors.contains("stopped after epoch 1 of 2"))
        #expect(try RunDirectory(root: o.out).history().map(\.epoch) == [1])
        let resumed = try Trainer(options: o).run(resume: true)
        #expect(resumed.epochs.map(\.epoch) == [1, 2] && !resumed.stoppedAtTimeLimit)
        let (d, n) = try Self.relativeDifference(straight.lastCheckpoint, resumed.lastCheckpoint)
        #expect(d <= 1e-5, "stopped on 2 ranks, resumed on 1: \(n) differs by \(d)")
    }

    /// Rank 1 fails at the start of epoch 2: the job stops (no hang) with rank 1's message, and epoch 1's checkpoint
    /// is intact.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func aRankThatFailsStopsTheJobWithItsMessage() throws {
        let f = try TrainerFixture.positional(train: 6, val: 2)
        let o = Self.defined(f, "fails", method: .patchgd, epochs: 3)
        let run = try Self.mpiTrain(2, o, environment: [Trainer.faultRankVariable: "1:2"])
        #expect(run.status != 0 && run.status != -1, "status \(run.status): \(run.errors.suffix(1000))")
        #expect(run.errors.contains("gigapatch-train (rank 1 of 2): error: fault injected"), "\(run.errors.suffix(1500))")
        let checkpoint = try Checkpoint.info(o.out + "/checkpoints/last.safetensors")
        #expect(checkpoint.state.epochsDone == 1)
        _ = try Safetensors.read(o.out + "/checkpoints/last.safetensors")
    }

    /// Prediction on 2 ranks writes the file and rows one process writes (slides shared by the work queue), for
    /// slides of the index and for new slides ingested on the way.
    /// Unreadable patches found on every rank are listed in bad-patches.csv and counted in the metrics as one process
    /// lists and counts them (rank 0 used to write its own alone). Every training slide is damaged, so both ranks
    /// read bad patches whatever the batch order.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func badPatchesOfEveryRankAreListed() throws {
        let f = try TrainerFixture.corruptTiles(damaged: [0, 1, 2])
        var o = f.options("one", epochs: 1)
        o.maxBadPatches = 0.9
        o.workers = 1
        try o.json().write(toFile: f.dir.file("one.json"), atomically: true, encoding: .utf8)
        let one = try Executables.run("train", ["--config", f.dir.file("one.json")])
        #expect(one.status == 0, "\(one.errors)")
        o.out = f.dir.file("two")
        let two = try Self.mpiTrain(2, o)
        #expect(two.status == 0, "\(two.errors)")
        let list = { (run: String) in try String(contentsOfFile: f.dir.file("\(run)/bad-patches.csv"), encoding: .utf8).split(separator: "\n") }
        let a = try list("one"), b = try list("two")
        #expect(Set(a.dropFirst().map { $0.split(separator: ",")[0] }).count == 3, "every damaged slide listed: \(a)")
        #expect(a == b)
        let counted = { (run: String) in
            try JSONDecoder().decode(EpochMetrics.self, from: Data(try String(contentsOfFile: f.dir.file("\(run)/metrics.jsonl"), encoding: .utf8).utf8)).badPatches
        }
        #expect(try counted("one") == a.count - 1 && counted("two") == a.count - 1)
    }

    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func twoRanksPredictWhatOneProcessPredicts() throws {
        let f = try TrainerFixture.positional(train: 4, val: 5)
        let trained = try Trainer(options: f.options("run", epochs: 1)).run()
        let common = ["--db", f.db, "--checkpoint", trained.lastCheckpoint, "--split", "all", "--workers", "1"]
        let one = try Executables.run("predict", common + ["--out", f.dir.file("one.csv")])
        #expect(one.status == 0, "\(one.errors)")
        let two = try Executables.mpi(2, "predict", common + ["--out", f.dir.file("two.csv")])
        #expect(two.status == 0, "\(two.errors.suffix(1500))")
        let a = try String(contentsOfFile: f.dir.file("one.csv"), encoding: .utf8), b = try String(contentsOfFile: f.dir.file("two.csv"), encoding: .utf8)
        #expect(a.split(separator: "\n").count == 10 && a == b, "\(a)\n---\n\(b)")
        #expect(two.output.components(separatedBy: "slides predicted").count == 2, "one summary, from rank 0: \(two.output)")

        let newSlides = ["--checkpoint", trained.lastCheckpoint, "--slides", f.dir.file("slides"), "--workers", "1"]
        let fresh = try Executables.mpi(2, "predict", newSlides + ["--out", f.dir.file("new/two.csv")])
        #expect(fresh.status == 0, "\(fresh.errors.suffix(1500))")
        let freshOne = try Executables.run("predict", newSlides + ["--out", f.dir.file("new/one.csv")])
        #expect(freshOne.status == 0, "\(freshOne.errors)")
        let c = try String(contentsOfFile: f.dir.file("new/two.csv"), encoding: .utf8)
        let d = try String(contentsOfFile: f.dir.file("new/one.csv"), encoding: .utf8)
        #expect(c.split(separator: "\n").count == 10 && c == d, "\(c)\n---\n\(d)")
    }
}
