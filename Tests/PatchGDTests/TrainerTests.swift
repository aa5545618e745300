import Foundation
import Ingest
import Manifests
import NN
import PatchIndex
import Seeded
import SlideIO
import Stain
import TestSupport
import Testing
import UltraMNIST
@testable import PatchGD

/// Small datasets in a patch index, built the way users build them: files written, then ingested.
struct TrainerFixture {
    let dir = TemporaryDirectory()
    var db: String { dir.file("index.sqlite") }

    /// Two classes told apart by where a dark blob sits (left or right half), 128 x 128 slides, 32 px patches (4 x 4
    /// grids): the head must use the positions of Z's cells. Slides 0..<train are train, the rest val.
    static func positional(train: Int = 8, val: Int = 4) throws -> TrainerFixture {
        let f = TrainerFixture()
        try FileManager.default.createDirectory(atPath: f.dir.file("slides"), withIntermediateDirectories: true)
        var rows = ["slide,label,split"]
        for i in 0 ..< train + val {
            let label = i % 2
            let y = 30.0 + Double(i * 13 % 60)
            let blob = Blob(centerX: label == 0 ? 32 : 96, centerY: y, radiusX: 20, radiusY: 20)
            try SyntheticSlide(width: 128, height: 128, blobs: [blob]).write(to: f.dir.file("slides/s\(i).tiff"))
            rows.append("slides/s\(i).tiff,\(label),\(i < train ? "train" : "val")")
        }
        try (rows.joined(separator: "\n") + "\n").write(toFile: f.dir.file("manifest.csv"), atomically: true, encoding: .utf8)
        var settings = try IngestSettings.preset("ultramnist")
        settings.patchSize = 32
        try f.ingest(manifest: f.dir.file("manifest.csv"), settings: settings)
        return f
    }

    /// A small UltraMNIST set (digit-like fake MNIST, 128 px images, scales 1-4, 64 px patches: 2 x 2 grids).
    static func ultraMNIST(trainPerClass: Int = 2) throws -> TrainerFixture {
        let f = TrainerFixture()
        try FakeMNIST.write(to: f.dir.file("mnist"))
        var recipe = UltraMNISTRecipe.patchgd
        recipe.size = 128
        recipe.minScale = 1
        recipe.maxScale = 2
        recipe.scaleWeights = UltraMNISTRecipe.vShape(descendingFrom: 2, count: 2)
        recipe.classes = 4
        recipe.minDigits = 1
        recipe.maxDigits = 2
        let job = UltraMNISTJob(recipe: recipe, counts: SplitCounts(train: trainPerClass, val: 1, test: 0), seed: 3)
        try UltraMNISTGenerator.run(job: job, mnistDirectory: f.dir.file("mnist"), outDirectory: f.dir.file("um"), workers: 2) { _ in }
        var settings = try IngestSettings.preset("ultramnist")
        settings.patchSize = 64
        try f.ingest(manifest: f.dir.file("um/manifest.csv"), settings: settings)
        return f
    }

    /// Four 512 x 512 slides (s0-s2 train, s3 val), two level-0 tiles of each slide in `damaged` made unreadable;
    /// the tissue map comes from level 2, so the damage is found only when patches are read.
    static func corruptTiles(damaged: [Int]) throws -> TrainerFixture {
        let f = TrainerFixture()
        try FileManager.default.createDirectory(atPath: f.dir.file("slides"), withIntermediateDirectories: true)
        var rows = ["slide,label,split"]
        for i in 0 ..< 4 {
            let blob = Blob(centerX: i % 2 == 0 ? 128 : 384, centerY: 256, radiusX: 100, radiusY: 100)
            try SyntheticSlide(width: 512, height: 512, blobs: [blob]).write(to: f.dir.file("slides/s\(i).tiff"))
            rows.append("slides/s\(i).tiff,\(i % 2),\(i < 3 ? "train" : "val")")
        }
        for i in damaged { #expect(try CorruptTIFF.damageTiles(f.dir.file("slides/s\(i).tiff"), tiles: [1, 3]) == 2) }
        try (rows.joined(separator: "\n") + "\n").write(toFile: f.dir.file("manifest.csv"), atomically: true, encoding: .utf8)
        var settings = try IngestSettings.preset("ultramnist")
        settings.patchSize = 64
        settings.maskMaxSize = 128
        try f.ingest(manifest: f.dir.file("manifest.csv"), settings: settings)
        return f
    }

    func ingest(manifest: String, settings: IngestSettings) throws {
        let request = IngestRequest(slidesDirectory: nil, manifestPath: manifest, databasePath: db, dataset: "test", settings: settings, workers: 2)
        let summary = try IngestStage.run(request, log: { _ in }, progress: { _, _, _ in })
        #expect(summary.slides.failed == 0)
    }

    /// Options for a fast tiny run.
    func options(_ out: String, epochs: Int = 2) -> TrainConfig {
        var o = TrainConfig.defaults
        o.db = db
        o.out = dir.file(out)
        o.backbone = "tiny"
        o.latent = 16
        o.headFeatures = 16
        o.headDropout = 0
        o.epochs = epochs
        o.batchSize = 4
        o.sampling = 0.25
        o.lr = 3e-3
        o.normalization = "mnist"
        o.seed = 7
        o.selectBy = .accuracy
        return o
    }
}

extension TrainerFixture {
    /// The positional set trained to fit (25 epochs, no augmentation, s = 1/2, batch 8), with `configure` applied first.
    static func fittedPositional(_ configure: (inout TrainConfig) -> Void = { _ in }) throws -> (TrainerFixture, TrainSummary) {
        let f = try TrainerFixture.positional()
        var o = f.options("run", epochs: 25)
        o.augment = false
        o.sampling = 0.5
        o.batchSize = 8
        configure(&o)
        return (f, try Trainer(options: o).run())
    }
}

struct TrainerTests {
    /// Training lowers the loss by 10% in 10 epochs on a small UltraMNIST set.
    @Test func lossDecreasesOnSmallUltraMNIST() throws {
        let f = try TrainerFixture.ultraMNIST(trainPerClass: 3)
        var o = f.options("run", epochs: 10)
        o.augment = false
        o.schedule = .constant
        let summary = try Trainer(options: o).run()
        #expect(summary.epochs.count == 10)
        // An epoch is a few steps on 30 images, so single epochs' losses swing by +-0.1, and how they swing depends
        // on rounding (BLAS kernels, convolution algorithm): the last three epochs together against the first.
        let losses = summary.epochs.map(\.trainLoss), late = losses.suffix(3).reduce(0, +) / 3
        #expect(late < losses[0] * 0.9, "train loss by epoch \(losses)")
        // metrics.jsonl has one line per epoch with the documented keys, and metrics.csv the same rows.
        let lines = try String(contentsOfFile: f.dir.file("run/metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 10)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        for key in ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_kappa", "seconds", "peak_rss_mb"] {
            #expect(object[key] != nil, "metrics.jsonl lacks \(key)")
        }
        let csv = try CSVTable(text: String(contentsOfFile: f.dir.file("run/metrics.csv"), encoding: .utf8))
        #expect(csv.rows.count == 10 && csv.header.contains("val_kappa"))
    }

    /// The positional set is fitted perfectly: every training slide predicted right in evaluation mode.
    @Test func overfitsSmallSetToFullTrainingAccuracy() throws {
        let (f, summary) = try TrainerFixture.fittedPositional()
        #expect(summary.epochs.last!.trainLoss < summary.epochs.first!.trainLoss)
        let result = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("train.csv"), split: .train))
        #expect(result.predictions.count == 8)
        #expect(result.metrics?.accuracy == 1, "training accuracy \(result.metrics?.accuracy ?? -1)")
    }

    /// Stopped after epoch 1 and resumed, a run ends with exactly the weights, optimizer state and metrics of one that
    /// ran through; in float32 and in bf16 (whose kernels are as deterministic; skipped on a CPU without AVX512_BF16).
    @Test(arguments: [Precision.fp32, .bf16])
    func resumeEqualsNoInterruption(precision: Precision) throws {
        if precision == .bf16 && !BFloat16.isSupported { try Test.cancel("this CPU has no AVX512_BF16: the bf16 resume test is skipped") }
        let f = try TrainerFixture.positional(train: 6, val: 2)
        var o = f.options("straight", epochs: 3)
        o.precision = precision
        o.colorJitter = 0.2
        o.augmentation = .he                       // HED jitter, hue, blur and noise drawn per patch as well
        o.headDropout = 0.2
        let straight = try Trainer(options: o).run()

        o.out = f.dir.file("interrupted")
        let first = Trainer(options: o)
        first.stopAfterEpochs = 1
        let partial = try first.run()
        #expect(partial.epochs.count == 1)
        let index = try PatchIndex.existing(at: f.db)
        let runID = try #require(try index.runID(directory: absolute(o.out)))
        #expect(try index.run(id: runID)?.status == "interrupted")
        #expect(throws: TrainingError.self) { try Trainer(options: o).run() }   // the directory holds a run: --resume needed
        let resumed = try Trainer(options: o).run(resume: true)
        #expect(resumed.epochs.count == 3)
        #expect(try index.run(id: runID)?.status == "done")

        let a = try Safetensors.read(straight.lastCheckpoint).tensors, b = try Safetensors.read(resumed.lastCheckpoint).tensors
        #expect(a.keys.sorted() == b.keys.sorted() && !a.isEmpty)
        for (name, entry) in a { #expect(entry.data == b[name]?.data, "\(name) differs after resume") }
        let ma = try Safetensors.read(Checkpoint.optimizerPath(straight.lastCheckpoint)).tensors
        let mb = try Safetensors.read(Checkpoint.optimizerPath(resumed.lastCheckpoint)).tensors
        for (name, entry) in ma { #expect(entry.data == mb[name]?.data, "optimizer \(name) differs after resume") }
        #expect(straight.epochs.map(\.trainLoss) == resumed.epochs.map(\.trainLoss))
    }

    /// `--time-limit` stops at an epoch boundary once the next epoch would pass it (here after the first, which always
    /// runs), with that epoch committed and the run marked interrupted; the limit is not saved with the run, and the
    /// run resumed under a generous limit ends exactly as one that ran through.
    @Test func timeLimitStopsBetweenEpochsAndTheResumedRunEndsAsOneThatRanThrough() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        var o = f.options("straight", epochs: 3)
        let straight = try Trainer(options: o).run()
        #expect(!straight.stoppedAtTimeLimit && straight.epochs.count == 3 && straight.scheduledEpochs == 3)

        o.out = f.dir.file("limited")
        o.timeLimit = TimeLimit(seconds: 0.001)
        var lines: [String] = []
        let stopped = try Trainer(options: o, log: { lines.append($0) }).run()
        #expect(stopped.stoppedAtTimeLimit && stopped.epochs.count == 1 && stopped.scheduledEpochs == 3)
        #expect(lines.contains { $0.contains("time limit 0:00:00 reached: stopped after epoch 1 of 3") && $0.contains("--resume") })
        let index = try PatchIndex.existing(at: f.db)
        #expect(try index.run(id: try #require(try index.runID(directory: absolute(o.out))))?.status == "interrupted")
        let saved = try String(contentsOfFile: f.dir.file("limited/options.json"), encoding: .utf8)
        #expect(!saved.contains("time-limit"), "the limit is this invocation's, not the run's")

        o.timeLimit = TimeLimit(seconds: 3600)
        let resumed = try Trainer(options: o).run(resume: true)
        #expect(!resumed.stoppedAtTimeLimit && resumed.epochs.count == 3)
        let a = try Safetensors.read(straight.lastCheckpoint).tensors, b = try Safetensors.read(resumed.lastCheckpoint).tensors
        #expect(!a.isEmpty && a.allSatisfy { $0.value.data == b[$0.key]?.data }, "weights differ after a time-limited stop")
    }

    /// Stopped in the middle of a curriculum's first stage and resumed, a run goes through the same stages and ends
    /// with the same weights as one that ran through; both low-pass views train.
    @Test(arguments: [LowPassMethod.resize, .fourier])
    func resumeInTheMiddleOfACurriculum(lowPass: LowPassMethod) throws {
        let f = try TrainerFixture.positional(train: 8, val: 2)
        var o = f.options("straight", epochs: 2)
        o.curriculum = .efficienttrain
        o.curriculumStages = "112:0,224:1"   // stage 0: 2 x (224/112)^2 = 8 mini-batches at half resolution, stage 1: 2
        o.lowPass = lowPass
        let straight = try Trainer(options: o).run()
        #expect(straight.epochs.map(\.stageResolution) == [112, 112, 112, 112, 224])
        #expect(abs((straight.epochs[3].compute ?? 0) - 0.5) < 1e-9 && abs((straight.epochs[4].compute ?? 0) - 1) < 1e-9)
        o.out = f.dir.file("interrupted")
        let first = Trainer(options: o)
        first.stopAfterEpochs = 2
        #expect(try first.run().epochs.count == 2)
        let resumed = try Trainer(options: o).run(resume: true)
        #expect(resumed.epochs.map(\.stageResolution) == [112, 112, 112, 112, 224])
        let a = try Safetensors.read(straight.lastCheckpoint).tensors, b = try Safetensors.read(resumed.lastCheckpoint).tensors
        #expect(a.allSatisfy { $0.value.data == b[$0.key]?.data }, "weights differ after resuming mid-curriculum")
    }

    /// `--fill-chunk` reaches the PatchGD core, and the fill pass in evaluation mode does not depend on its
    /// chunking: one patch per backbone call or 64 give the same Z (up to float summation order).
    @Test func fillChunkDoesNotChangeZ() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        var o = f.options("run", epochs: 1)
        o.fillChunk = 3
        let info = CheckpointInfo(method: .patchgd, backbone: "tiny", latent: 16, headFeatures: 16,
            headDropout: 0, classes: 2, loss: .ce, normalization: .mnist, patchSize: 32, imageSize: 64, maxGrid: 8, oversize: .crop,
            dataset: "test", tilingID: 1, tilingParams: "{}", splitScheme: "default", selectBy: .accuracy)
        let method = try #require(ModelFactory.method(info, seed: o.seed, compute: o.compute, training: TrainingSetup(o)) as? PatchGDMethod)
        #expect(method.core.fillChunk == 3)
        let data = try PatchDataset.load(index: try PatchIndex.existing(at: f.db), dataset: nil, tilingID: nil, maxGrid: 8)
        let images = Array(data.images.prefix(2))
        let (provide, _) = method.provider(images, epoch: nil)
        let z3 = try method.core.fill(images.map(\.grid), patches: provide)
        method.core.fillChunk = 1
        let z1 = try method.core.fill(images.map(\.grid), patches: provide)
        method.core.fillChunk = 64
        let z64 = try method.core.fill(images.map(\.grid), patches: provide)
        let scale = (0 ..< z64.count).map { abs(z64.pointer[$0]) }.max()!
        for z in [z1, z3] {
            #expect((0 ..< z.count).allSatisfy { abs(z.pointer[$0] - z64.pointer[$0]) <= 1e-5 * scale })
        }
    }

    /// RS2 through the trainer: half the training set per epoch, each slide once per two epochs.
    @Test func subsetFractionTrainsOnHalfPerEpoch() throws {
        let f = try TrainerFixture.positional(train: 8, val: 2)
        var o = f.options("rs2", epochs: 4)
        o.subsetFraction = 0.5
        var rates: [Double] = []
        let summary = try Trainer(options: o, progress: { p in if p.batch == p.batches { rates.append(Double(p.batches)) } }).run()
        #expect(summary.epochs.count == 4 && rates == [1, 1, 1, 1])   // 4 of 8 slides per epoch in one batch of 4
    }

    /// A non-finite loss stops the run with a message; the checkpoint of the last good epoch stays.
    @Test func nonFiniteLossStopsAndKeepsLastGoodCheckpoint() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        var o = f.options("run", epochs: 2)
        o.optimizer = .sgd
        let first = Trainer(options: o)
        first.stopAfterEpochs = 1
        _ = try first.run()
        let before = try Safetensors.read(first.lastPath).tensors
        o.lr = 1e30
        let error = #expect(throws: TrainingError.self) { try Trainer(options: o).run(resume: true) }
        #expect(error?.message.contains("non-finite") == true && error?.message.contains("(epoch 1)") == true, "\(error?.message ?? "")")
        let after = try Safetensors.read(first.lastPath)
        #expect(before.allSatisfy { $0.value.data == after.tensors[$0.key]?.data }, "the last good checkpoint changed")
        #expect(after.metadata["trainer_state"]?.contains("\"epochsDone\":1") == true)
        let index = try PatchIndex.existing(at: f.db)
        let runID = try #require(try index.runID(directory: absolute(o.out)))
        let run = try #require(try index.run(id: runID))
        #expect(run.status == "failed" && run.error?.contains("non-finite") == true)
    }

    @Test func gdBaselineTrainsOnDownscaledWholeImages() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        var o = f.options("gd", epochs: 2)
        o.method = .gd
        o.imageSize = 64
        let summary = try Trainer(options: o).run()
        #expect(summary.epochs.count == 2 && summary.epochs.allSatisfy { $0.trainLoss.isFinite })
        let (info, _, tensors) = try Checkpoint.info(summary.lastCheckpoint)
        #expect(info.method == .gd && info.imageSize == 64)
        #expect(tensors.keys.allSatisfy { $0.hasPrefix("backbone.") })
        let predictions = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("gd.json"), format: .json))
        #expect(predictions.predictions.count == 2)
    }

    /// The CSV has the documented columns and reads back to the same predictions; the database holds them too.
    @Test func predictionsCSVRoundTripsAndLandsInDatabase() throws {
        let f = try TrainerFixture.positional(train: 4, val: 4)
        let summary = try Trainer(options: f.options("run", epochs: 1)).run()
        let out = f.dir.file("pred/val.csv")
        let result = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: out))
        let table = try CSVTable(text: String(contentsOfFile: out, encoding: .utf8))
        #expect(table.header == ["image_id", "predicted", "prob_0", "prob_1", "label"])
        #expect(table.rows.count == 4)
        for (row, p) in zip(table.rows, result.predictions) {
            #expect(row.fields[0] == p.imageID && Int(row.fields[1]) == p.predicted && Int(row.fields[4]) == p.label)
            for k in 0 ..< 2 { #expect(abs(Double(row.fields[2 + k])! - p.probabilities[k]) < 1e-6) }
            #expect(abs(p.probabilities.reduce(0, +) - 1) < 1e-6)
        }
        let stored = try PatchIndex.existing(at: f.db).predictions(runID: result.runID)
        #expect(stored.map(\.predicted).sorted() == result.predictions.map(\.predicted).sorted())
        // PANDA form
        try Predictor.write(result.predictions, classes: 2, format: .panda, to: f.dir.file("sub.csv"))
        let panda = try CSVTable(text: String(contentsOfFile: f.dir.file("sub.csv"), encoding: .utf8))
        #expect(panda.header == ["image_id", "isup_grade"] && panda.rows.count == 4)
    }

    @Test func missingSlideIsSkippedWithMessage() throws {
        let f = try TrainerFixture.positional(train: 4, val: 3)
        let summary = try Trainer(options: f.options("run", epochs: 1)).run()
        try FileManager.default.removeItem(atPath: f.dir.file("slides/s5.tiff"))   // a val slide
        var messages: [String] = []
        let result = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("val.csv"))) { messages.append($0) }
        #expect(result.predictions.count == 2)
        #expect(result.skipped.map(\.key) == ["s5"])
        #expect(messages.contains { $0.contains("s5") && $0.contains("missing") })
    }

    @Test func clearErrorsForBadRequests() throws {
        let f = try TrainerFixture.positional(train: 2, val: 0)
        var o = f.options("run")
        o.db = f.dir.file("absent.sqlite")
        #expect(throws: PatchIndexError.self) { try Trainer(options: o).run() }
        o = f.options("run")
        o.dataset = "nope"
        let e1 = #expect(throws: TrainingError.self) { try Trainer(options: o).run() }
        #expect(e1?.message.contains("test") == true)   // names the datasets that exist
        o = f.options("run")
        o.valSplit = "val"
        o.splitScheme = "other"
        let e2 = #expect(throws: TrainingError.self) { try Trainer(options: o).run() }
        #expect(e2?.message.contains("gigapatch-split") == true)
        o = f.options("run")
        o.backbone = "vgg"
        let e3 = #expect(throws: TrainingError.self) { try Trainer(options: o).run() }
        #expect(e3?.message.contains("--backbone") == true)
    }
}

/// `--init` takes a torchvision-named file or a Gigapatch checkpoint (its `backbone.*` tensors), and leaves the final
/// projection as initialised.
struct InitialWeightsTests {
    @Test(arguments: ["", "backbone."]) func initLoadsTheBackboneAndKeepsTheProjection(prefix: String) throws {
        let dir = TemporaryDirectory()
        let source = try #require(Model.backbone("tiny", outputs: 10, seed: 11))
        var tensors = source.tensors(prefix: prefix)
        if !prefix.isEmpty {
            let head = PatchGDHead.make(latent: 10, features: 4, classes: 3, dropout: 0, seed: 2)
            tensors += head.tensors(prefix: "head.")
        }
        try Safetensors.write(tensors, metadata: [:], to: dir.file("w.safetensors"))
        let target = try #require(Model.backbone("tiny", outputs: 7, seed: 12))
        let before = Array(target.store.values)
        try Trainer.initialise(target, from: dir.file("w.safetensors"))
        for entry in target.store.entries where entry.kind == .parameter {
            let got = Array(target.store.values[entry.offset ..< entry.offset + entry.count])
            if entry.name.hasPrefix("fc.") {
                #expect(got == Array(before[entry.offset ..< entry.offset + entry.count]), "\(entry.name) must stay new")
            } else {
                let want = Array(source.store.values[try #require(source.store.entry(entry.name)).offset ..< source.store.entry(entry.name)!.offset + entry.count])
                #expect(got == want, "\(entry.name) not loaded")
            }
        }
    }
}

/// A run trained with --stain-normalize carries the target in its checkpoints; prediction applies it from there.
struct StainNormalisedRunTests {
    @Test func theTargetTravelsWithTheCheckpoint() throws {
        let f = try TrainerFixture.positional(train: 4, val: 2)
        let target = StainTarget(reinhard: Reinhard.Statistics(mean: [55, 35, -10], std: [10, 9, 6]), fittedFrom: "test")
        try target.write(to: f.dir.file("stain.json"))
        var o = f.options("run", epochs: 1)
        o.stainNormalize = f.dir.file("stain.json")
        let summary = try Trainer(options: o).run()
        let info = try Checkpoint.info(summary.lastCheckpoint).info
        #expect(info.stain == target)
        let method = ModelFactory.method(info, seed: 0, compute: try ComputeOptions.parse([]), training: nil)
        #expect(method.stain?.target == target)
        let result = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("p.csv"), split: .val))
        #expect(result.predictions.count == 2)

        // A missing or broken target is named before anything trains.
        o.out = f.dir.file("run2")
        o.stainNormalize = f.dir.file("missing.json")
        #expect { try Trainer(options: o).run() } throws: { "\($0)".contains("missing.json") && "\($0)".contains("gigapatch-stain fit") }
        try "{\"method\": \"macenko\"}".write(toFile: f.dir.file("broken.json"), atomically: true, encoding: .utf8)
        o.stainNormalize = f.dir.file("broken.json")
        #expect { try Trainer(options: o).run() } throws: { "\($0)".contains("broken.json") }
    }
}

/// Where the model looked: gradient x input on Z, checked against finite differences and occlusion, and on a task
/// whose label is where a blob is, the top-scoring cells are the blob's.
struct HeatmapTests {
    @Test func attributionIsTheGradientOfTheTargetLogitTimesZ() throws {
        let head = PatchGDHead.make(latent: 4, features: 6, classes: 3, dropout: 0, adaptiveStrides: true, seed: 3)
        let backbone = try #require(Model.backbone("tiny", outputs: 4, seed: 1))
        let core = PatchGD(backbone: backbone, head: head, config: PatchGDConfig(), backboneOptimizer: nil, headOptimizer: nil)
        var rng = SplitMix64(seed: 4)
        let z = Tensor(shape: [1, 4, 3, 3], values: (0 ..< 36).map { _ in Float(rng.next() >> 40) / Float(1 << 24) - 0.5 })
        let (logits, _, scores) = core.attribution(z) { _ in [2] }
        let eval = Context(training: false, recordForBackward: false)
        #expect(abs(head.forward(z, eval).pointer[2] - logits.pointer[2]) < 1e-6)
        // dLogit/dZ by central differences, summed with Z over channels, is each cell's score.
        for cell in 0 ..< 9 {
            var expected: Float = 0
            for ch in 0 ..< 4 {
                let i = ch * 9 + cell, saved = z.pointer[i], h: Float = 1e-2
                z.pointer[i] = saved + h; let up = head.forward(z, eval).pointer[2]
                z.pointer[i] = saved - h; let down = head.forward(z, eval).pointer[2]
                z.pointer[i] = saved
                expected += (up - down) / (2 * h) * saved
            }
            #expect(abs(scores.pointer[cell] - expected) < 2e-3 * max(1, abs(expected)), "cell \(cell): \(scores.pointer[cell]) vs \(expected)")
        }
        #expect(core.occlusion(z, image: 0, cells: Array(0 ..< 9), target: 2).count == 9)
    }

    @Test func heatmapsPointAtTheBlobThatDecidesTheLabel() throws {
        let (f, summary) = try TrainerFixture.fittedPositional { $0.headStrides = .adaptive }
        var options = PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("p.csv"), split: .train)
        options.heatmaps = f.dir.file("heat")
        options.occlusion = true
        let result = try Predictor.run(options)
        // The report beside the predictions embeds each slide's thumbnail and heatmap.
        let report = try String(contentsOfFile: f.dir.file("p.report.html"), encoding: .utf8)
        #expect(report.components(separatedBy: "data:image/jpeg;base64,").count - 1 == 2 * result.predictions.count)
        var hits = 0, agreements = 0
        for p in result.predictions where p.predicted == p.label {
            let csv = try CSVTable(text: String(contentsOfFile: f.dir.file("heat/\(p.imageID).csv"), encoding: .utf8))
            #expect(csv.header == ["row", "col", "level0_x", "level0_y", "score", "occlusion"])
            let rows = csv.rows.map { r in (col: Int(r.fields[1])!, score: Double(r.fields[4])!, occlusion: Double(r.fields[5])!) }
            // The blob is in the left half (columns 0-1 of 4) for label 0, in the right half for label 1.
            let top = rows.max { $0.score < $1.score }!
            if (p.label == 0) == (top.col < 2) { hits += 1 }
            let topOcclusion = rows.max { $0.occlusion < $1.occlusion }!
            if (top.col < 2) == (topOcclusion.col < 2) { agreements += 1 }
            #expect(FileManager.default.fileExists(atPath: f.dir.file("heat/\(p.imageID).jpg")) && FileManager.default.fileExists(atPath: f.dir.file("heat/\(p.imageID).thumb.jpg")))
        }
        let correct = result.predictions.filter { $0.predicted == $0.label }.count
        #expect(correct >= 6)
        #expect(hits >= correct - 1, "top cell on the blob's side for \(hits) of \(correct) slides")
        #expect(agreements >= correct - 1, "occlusion agrees on the side for \(agreements) of \(correct)")
    }
}

/// gigapatch-predict --slides: new slides ingested with the checkpoint's tiling into a new index beside the output,
/// then predicted; an unreadable one is skipped and counted.
struct NewSlidePredictionTests {
    @Test func newSlidesAreIngestedWithTheCheckpointsTilingAndPredicted() throws {
        let (f, summary) = try TrainerFixture.fittedPositional()
        let folder = f.dir.file("new")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (i, x) in [32.0, 96.0, 32.0, 96.0].enumerated() {
            try SyntheticSlide(width: 128, height: 128, blobs: [Blob(centerX: x, centerY: 40 + Double(i * 11), radiusX: 20, radiusY: 20)])
                .write(to: "\(folder)/n\(i).tiff")
        }
        try Data("not a slide".utf8).write(to: URL(fileURLWithPath: "\(folder)/broken.tiff"))
        var options = PredictOptions(db: "", checkpoint: summary.lastCheckpoint, out: f.dir.file("out/new.csv"))
        options.newSlides = NewSlides(slidesDirectory: folder, manifest: nil, workers: 2)
        var lines: [String] = []
        let result = try Predictor.run(options) { lines.append($0) }
        #expect(Set(result.predictions.map(\.imageID)) == ["n0", "n1", "n2", "n3"])
        #expect(result.skipped.count == 1 && result.skipped[0].key.hasSuffix("broken.tiff"))
        // The blob's side decides the class the model was trained on (left 0, right 1).
        #expect(result.predictions.filter { p in p.predicted == (p.imageID == "n1" || p.imageID == "n3" ? 1 : 0) }.count >= 3)
        // A new index beside the output, in the checkpoint's dataset, with the same tiling parameters.
        let index = try PatchIndex.existing(at: f.dir.file("out/new.index.sqlite"))
        let info = try Checkpoint.info(summary.lastCheckpoint).info
        let dataset = try #require(try index.existingDatasetID(named: info.dataset))
        #expect(try index.tiling(datasetID: dataset, matchingParams: info.tilingParams, identity: info.tilingIdentity) != nil)
        #expect(lines.contains { $0.contains("checkpoint's tiling") })
    }
}

extension NewSlidePredictionTests {
    /// Slides without mpp, and slides scanned far from the training median, are named; those close to it are not.
    @Test func slidesAtAnotherResolutionAreNamed() {
        let mpps: [String: Double?] = ["same": 0.5, "close": 0.55, "far": 0.25, "none": nil]
        let lines = NewSlides.mppWarnings(keys: ["same", "close", "far", "none"], mpps: mpps, trained: 0.5)
        #expect(lines.count == 2)
        #expect(lines[0].contains("1 slide does not state") && lines[0].contains("none"))
        #expect(lines[1].contains("far (0.250)") && !lines[1].contains("close") && !lines[1].contains("same"))
        #expect(NewSlides.mppWarnings(keys: ["same", "close"], mpps: mpps, trained: 0.5).isEmpty)
    }
}

/// `--precision bf16` end to end: training learns as in float32, the checkpoint stays float32 and predicts in either
/// precision, and a CPU without AVX512_BF16 falls back to fp32 with one line.
struct MixedPrecisionTests {
    @Test func bf16TrainsLikeFloat32AndItsCheckpointPredictsInEither() throws {
        if !BFloat16.isSupported { try Test.cancel("this CPU has no AVX512_BF16: the bf16 training test is skipped") }
        let f = try TrainerFixture.positional()
        var o = f.options("fp32", epochs: 6)
        let full = try Trainer(options: o).run()
        o.out = f.dir.file("bf16")
        o.precision = .bf16
        var notes: [String] = []
        let half = try Trainer(options: o, log: { notes.append($0) }).run()
        #expect(!notes.contains { $0.contains("AVX512_BF16") }, "bf16 fell back on a CPU that has it")
        // Rounding changes the path (on 8 images, by as much as another seed does: 0.2-0.4 of the loss in some epochs),
        // not where it goes: both learn the task.
        // With 4 validation images one image is 0.25: the path to it depends on OpenBLAS's kernel family as well
        // (Haswell's fp32 run ends at 1.0, SkylakeX's at 0.75 after 1.0 at epoch 5), so each run must reach every
        // image once and end at 3 of 4 or better (chance is 2 of 4).
        for (name, run) in [("fp32", full), ("bf16", half)] {
            let accuracies = run.epochs.map { $0.valAccuracy ?? -1 }
            #expect(run.epochs.last!.trainLoss < 0.6 * run.epochs.first!.trainLoss, "\(name) losses \(run.epochs.map(\.trainLoss))")
            #expect(accuracies.max() == 1 && accuracies.last! >= 0.75, "\(name) validation accuracy \(accuracies)")
        }
        #expect(full.epochs.map(\.trainLoss) != half.epochs.map(\.trainLoss), "bf16 gave float32's losses exactly: it was not used")
        let weights = try Safetensors.read(half.lastCheckpoint).tensors
        #expect(!weights.isEmpty && weights.values.allSatisfy { !["BF16", "F16"].contains($0.dtype) }, "the checkpoint holds half-precision tensors")
        #expect(weights.values.contains { $0.dtype == "F32" })

        var predictions: [Precision: [[Double]]] = [:]
        for precision in Precision.allCases {
            var options = PredictOptions(db: f.db, checkpoint: half.lastCheckpoint, out: f.dir.file("\(precision).csv"), split: .val)
            options.compute.precision = precision
            predictions[precision] = try Predictor.run(options).predictions.map(\.probabilities)
        }
        let a = try #require(predictions[.fp32]), b = try #require(predictions[.bf16])
        #expect(a.count == 4 && b.count == 4)
        let worst = zip(a, b).flatMap { zip($0, $1).map { abs($0 - $1) } }.max() ?? 1
        #expect(worst < 0.05, "bf16 and fp32 predictions of one checkpoint differ by \(worst)")
    }

    @Test func withoutTheInstructionTheRunSaysSoAndUsesFloat32() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let f = try TrainerFixture.positional(train: 4, val: 2)
        var o = f.options("fallback", epochs: 1)
        o.precision = .bf16
        let config = f.dir.file("fallback.json")
        try o.json().write(toFile: config, atomically: true, encoding: .utf8)
        let result = try Executables.run("train", ["--config", config], environment: ["GIGAPATCH_DISABLE_BF16": "1"])
        #expect(result.status == 0, "\(result.errors)")
        let lines = (result.output + result.errors).split(separator: "\n").filter { $0.contains("AVX512_BF16") }
        #expect(lines.count == 1, "expected one line about the fallback, got \(lines)")
        #expect(lines.first?.contains("fp32") == true)
        #expect(FileManager.default.fileExists(atPath: o.out + "/checkpoints/last.safetensors"))
    }
}
