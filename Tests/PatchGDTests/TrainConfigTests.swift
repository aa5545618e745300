import Foundation
import NN
import PatchIndex
import TestSupport
import Testing
@testable import PatchGD

/// The training configuration: declared once, read from the command line, config files and options.json into the
/// same type, with the documented precedence.
struct TrainConfigTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

    /// Every field has a key, every key is an option the parser accepts, and the defaults are the documented ones.
    @Test func everyKeyIsAnOptionAndDefaultsAreDocumented() throws {
        let keys = TrainConfig.keys
        #expect(Set(keys).count == keys.count)
        // Every option the trainer took before the configuration was declared once is still there.
        let before = ["db", "dataset", "tiling", "out", "method", "backbone", "init", "latent", "head-features", "head-dropout", "sampling",
                      "patches-per-step", "inner-iterations", "grad-accumulation", "fill-statistics", "epochs", "batch-size", "optimizer",
                      "lr", "head-lr", "momentum", "weight-decay", "schedule", "warmup", "loss", "label-smoothing", "clip", "seed",
                      "workers", "val-split", "val-fold", "split-scheme", "classes", "select-by", "max-grid", "oversize", "normalization",
                      "augment", "color-jitter", "image-size", "cache-size", "fill-chunk", "limit-batches", "curriculum", "low-pass",
                      "curriculum-stages", "subset-fraction"]
        #expect(Set(before).subtracting(keys).isEmpty, "lost: \(Set(before).subtracting(keys).sorted())")
        #expect(!keys.contains("config") && !keys.contains("resume"))
        // Each key set through the parser from a mapping lands in the field of that name.
        let d = TrainConfig.defaults
        let mapping = d.mapping
        for key in keys where mapping[key] != nil {
            let arguments = try OptionMapping.arguments([key: mapping[key]!], allowed: keys, source: "test")
            #expect((try? TrainConfig.parse(arguments)) != nil, "\(arguments) is not accepted")
        }
        #expect(d.method == .patchgd && d.backbone == "resnet18" && d.latent == 256 && d.headFeatures == 256 && d.headDropout == 0.2)
        #expect(d.sampling == 0.125 && d.gradAccumulation && d.fillStatistics == .running && d.epochs == 10 && d.batchSize == 4)
        #expect(d.optimizer == .adam && d.lr == 1e-3 && d.headLr == nil && d.schedule == .cosine && d.loss == .ce && d.selectBy == .kappa)
        #expect(d.maxGrid == 64 && d.oversize == .crop && d.augment && d.cacheSize == 4096 && d.fillChunk == 64 && d.curriculum == .none)
    }

    /// Warm-up defaults to one epoch when the backbone starts from --init weights (without it the demo's pretrained
    /// encoder collapsed, EXPERIMENTS.md), to none otherwise; an explicit --warmup always wins, 0 included.
    @Test(arguments: [([String](), 0.0), (["--init", "encoder.safetensors"], 1.0),
                      (["--init", "encoder.safetensors", "--warmup", "0"], 0.0), (["--warmup", "2.5"], 2.5)])
    func warmUpDefaultFollowsInit(arguments: [String], expected: Double) throws {
        let o = try TrainConfig.parse(arguments)
        #expect(o.effectiveWarmup == expected)
        // options.json keeps what was given, so a resumed run derives the same warm-up.
        let again = try TrainConfig.parse(try OptionMapping.arguments(o.mapping, allowed: TrainConfig.keys, source: "test"))
        #expect(again.effectiveWarmup == expected)
    }

    /// defaults < resumed run's options.json < --config file < command line.
    @Test func layersFollowThePrecedence() throws {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("run"), withIntermediateDirectories: true)
        try #"{"db": "saved.sqlite", "epochs": 3, "lr": 0.1, "batch-size": 2, "augment": false, "out": "ignored"}"#
            .write(toFile: dir.file("run/options.json"), atomically: true, encoding: .utf8)
        try "epochs: 5\nlr: 0.2\nfill-statistics: batch\n".write(toFile: dir.file("c.yaml"), atomically: true, encoding: .utf8)

        let plain = try TrainConfig.resolve(commandLine: ["--db", "x.sqlite", "--out", dir.file("run")])
        #expect(plain.epochs == 10 && plain.lr == 1e-3 && plain.augment)

        let config = try TrainConfig.resolve(commandLine: ["--config", dir.file("c.yaml"), "--db", "x.sqlite", "--epochs", "7"])
        #expect(config.epochs == 7 && config.lr == 0.2 && config.fillStatistics == .batch && config.db == "x.sqlite")

        let resumed = try TrainConfig.resolve(commandLine: ["--resume", "--out", dir.file("run"), "--config", dir.file("c.yaml"), "--lr", "0.3"])
        #expect(resumed.resume)
        #expect(resumed.db == "saved.sqlite" && resumed.batchSize == 2 && !resumed.augment)   // from options.json
        #expect(resumed.epochs == 5 && resumed.fillStatistics == .batch)                       // the config file over options.json
        #expect(resumed.lr == 0.3 && resumed.out == dir.file("run"))                           // the command line over both
        // Explicitly given at its default value on the command line still wins over a file.
        let explicit = try TrainConfig.resolve(commandLine: ["--config", dir.file("c.yaml"), "--epochs", "10"])
        #expect(explicit.epochs == 10)
    }

    /// Bad values are refused with a message naming the option (and the file, when it came from one).
    @Test(arguments: [["--head-dropout", "1.5"], ["--head-dropout", "1"], ["--head-dropout", "-0.5"], ["--lr", "nan"], ["--lr", "0"],
                      ["--sampling", "2"], ["--method", "sgd"], ["--backbone", "vgg"], ["--warmup", "inf"], ["--classes", "1"]])
    func badValuesNameTheOption(arguments: [String]) throws {
        #expect(throws: (any Error).self) { try TrainConfig.resolve(commandLine: arguments) }
        do { _ = try TrainConfig.parse(arguments) } catch {
            #expect(TrainConfig.message(for: error).contains(arguments[0]), "\(TrainConfig.message(for: error))")
        }
        let dir = TemporaryDirectory()
        let key = String(arguments[0].dropFirst(2))
        try "\(key): \"\(arguments[1])\"\n".write(toFile: dir.file("bad.yaml"), atomically: true, encoding: .utf8)
        let error = #expect(throws: TrainingError.self) { try TrainConfig.resolve(commandLine: ["--config", dir.file("bad.yaml")]) }
        #expect(error?.message.contains("bad.yaml") == true && error?.message.contains(arguments[0]) == true, "\(error?.message ?? "")")
        #expect(error?.kind == .badOption)
    }

    @Test func unknownKeysInAFileAreNamed() throws {
        let dir = TemporaryDirectory()
        try "epochs: 2\nlearning-rate: 0.1\n".write(toFile: dir.file("c.yaml"), atomically: true, encoding: .utf8)
        let error = #expect(throws: TrainingError.self) { try TrainConfig.resolve(commandLine: ["--config", dir.file("c.yaml")]) }
        #expect(error?.message.contains("learning-rate") == true && error?.message.contains("accepted") == true)
        let missing = #expect(throws: TrainingError.self) { try TrainConfig.resolve(commandLine: ["--config", dir.file("absent.yaml")]) }
        #expect(missing?.kind == .missingFile)
    }

    /// options.json written by a run reads back into the same configuration.
    @Test func optionsJSONRoundTrips() throws {
        var o = TrainConfig.defaults
        o.db = "a b.sqlite"
        o.lr = 0.00123
        o.augment = false
        o.gradAccumulation = false
        o.curriculum = .efficienttrain
        o.seed = UInt64.max
        o.initWeights = "w.safetensors"
        let dir = TemporaryDirectory()
        try o.json().write(toFile: dir.file("options.json"), atomically: true, encoding: .utf8)
        let back = try TrainConfig.parse(try TrainConfig.arguments(fromFile: dir.file("options.json")))
        #expect(NSDictionary(dictionary: back.mapping) == NSDictionary(dictionary: o.mapping))
        #expect(back.seed == UInt64.max && back.initWeights == "w.safetensors" && !back.augment && !back.gradAccumulation)
    }

    /// A run directory written before the configuration was declared once (options.json, metrics and a checkpoint of
    /// that time: the checkpoints' headers are kept, their tensors refilled) still resumes, and its checkpoint predicts.
    @Test func runFromBeforeTheChangeStillResumes() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        let source = Self.fixtures + "/run-before-config", run = f.dir.file("old-run")
        try FileManager.default.createDirectory(atPath: run + "/checkpoints", withIntermediateDirectories: true)
        for name in ["options.json", "metrics.jsonl"] { try FileManager.default.copyItem(atPath: source + "/" + name, toPath: run + "/" + name) }
        for name in ["last.safetensors", "last.optimizer.safetensors"] {
            try Self.refill(header: source + "/\(name).header.json", to: run + "/checkpoints/" + name)
        }
        // --workers 0: the saved workers: 1 would set the process-wide thread count (Parallel.threads) while other
        // tests' runs compare bit-exact results that depend on it (the bf16 resume test failed that way).
        let config = try TrainConfig.resolve(commandLine: ["--resume", "--out", run, "--db", f.db, "--epochs", "2", "--workers", "0"])
        #expect(config.backbone == "tiny" && config.latent == 16 && config.selectBy == .accuracy && config.seed == 7)
        let summary = try Trainer(options: config).run(resume: true)
        #expect(summary.epochs.map(\.epoch) == [1, 2] && summary.epochs.allSatisfy { $0.trainLoss.isFinite })
        let predictions = try Predictor.run(PredictOptions(db: f.db, checkpoint: run + "/checkpoints/last.safetensors", out: f.dir.file("p.csv")))
        #expect(predictions.predictions.count == 2)
    }

    /// A safetensors file from its header alone: the tensors' bytes are a small deterministic pattern (finite floats).
    static func refill(header path: String, to output: String) throws {
        let header = try Data(contentsOf: URL(fileURLWithPath: path))
        let object = try #require(try JSONSerialization.jsonObject(with: header) as? [String: Any])
        let end = object.compactMap { ($0.value as? [String: Any])?["data_offsets"] as? [Int] }.map { $0[1] }.max() ?? 0
        var data = Data()
        var length = UInt64(header.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(header)
        let floats = (0 ..< end / 4).map { Float(($0 * 7919) % 97) / 970 }
        floats.withUnsafeBytes { data.append(contentsOf: $0) }
        try data.write(to: URL(fileURLWithPath: output))
    }
}

/// `--time-limit`: the forms it reads (units, Slurm's clock forms), the ones it refuses, and when an epoch may start.
struct TimeLimitTests {
    @Test(arguments: [("90m", 5400.0), ("1h30m", 5400), ("1.5h", 5400), ("5400s", 5400), ("2d", 172_800), ("45s", 45),
                      ("30:00", 1800), ("1:30:00", 5400), ("2-00:00:00", 172_800), ("1-12", 129_600), ("1-0:30", 88_200),
                      (" 10m ", 600)])
    func readsDurations(text: String, seconds: Double) throws {
        #expect(try #require(TimeLimit(argument: text)).seconds == seconds)
    }

    @Test(arguments: ["90", "", "m", "1x", "-5m", "1:2:3:4", "a:00", "1--2", "0s", "1h-", "1.2.3h"])
    func refusesOthers(text: String) {
        #expect(TimeLimit(argument: text) == nil, "'\(text)' should be refused")
    }

    @Test func anEpochStartsOnlyIfTheLongestSoFarStillFits() {
        let limit = TimeLimit(seconds: 100)
        #expect(limit.allowsEpoch(elapsed: 500, longestEpoch: nil))        // the first always runs
        #expect(limit.allowsEpoch(elapsed: 60, longestEpoch: 40))
        #expect(!limit.allowsEpoch(elapsed: 60.5, longestEpoch: 40))
        #expect(limit.description == "0:01:40" && TimeLimit(seconds: 90_061).description == "25:01:01")
    }

    @Test func isReadFromTheCommandLineButNeverFromAFileOrSaved() throws {
        let o = try TrainConfig.parse(["--time-limit", "1:00:00"])
        #expect(o.timeLimit?.seconds == 3600)
        #expect(!TrainConfig.keys.contains("time-limit") && o.mapping["time-limit"] == nil)
        #expect(throws: (any Error).self) { try TrainConfig.parse(["--time-limit", "60"]) }
    }
}
