import ArgumentParser
import Foundation
import GigapatchCLI
import PatchGD

/// `gigapatch-train`: trains PatchGD (or the GD baseline) on a dataset of the patch index.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-train",
        abstract: "Train PatchGD (or the GD baseline) on the slides of a patch index, streaming patches from the slide files.",
        discussion: """
            Every option can also be given in a YAML or JSON file (--config), named as here without the dashes \
            (grad-accumulation: false, augment: false for the --no- flags); the command line overrides the file. \
            RUNDIR gets options.json, metrics.jsonl, metrics.csv and checkpoints/{last,best}.safetensors (with optimizer \
            state beside each). --resume continues RUNDIR from its last checkpoint with the options saved there \
            (options given again override them).
            """)

    @Option(help: "Patch index written by gigapatch-ingest.") var db: String?
    @Option(help: "Dataset in the index (default: the only one).") var dataset: String?
    @Option(help: "Tiling id (default: the only one; gigapatch-inspect --db lists them).") var tiling: Int64?
    @Option(help: "Run directory (created).") var out: String?
    @Option(help: "YAML or JSON file of options.") var config: String?
    @Flag(help: "Continue the run in --out from checkpoints/last.safetensors.") var resume = false

    @Option(help: "patchgd or gd (whole image downscaled to --image-size). Default patchgd.") var method: String?
    @Option(help: "tiny, resnet18, resnet34, resnet50 or mobilenet_v2. Default resnet18.") var backbone: String?
    @Option(name: .customLong("init"), help: "Initial backbone weights (.safetensors, torchvision names); the final projection stays new.") var initWeights: String?
    @Option(help: "Latent dimension C of Z. Default 256.") var latent: Int?
    @Option(help: "Head width F. Default 256.") var headFeatures: Int?
    @Option(help: "Head Dropout2d probability. Default 0.2.") var headDropout: Double?
    @Option(help: "Fraction s of patches recomputed with gradients per inner iteration. Default 0.125.") var sampling: Double?
    @Option(help: "Fixed k patches per image per inner iteration (bounds memory); overrides --sampling.") var patchesPerStep: Int?
    @Option(help: "Inner iterations per mini-batch. Default: one sweep, ceil(patches / k).") var innerIterations: Int?
    @Flag(help: "Step after every inner iteration instead of once per mini-batch.") var noGradAccumulation = false
    @Option(help: "BatchNorm statistics of the training fill pass: running (evaluation mode) or batch. Default running.") var fillStatistics: String?

    @Option(help: "Epochs. Default 10.") var epochs: Int?
    @Option(help: "Images per mini-batch. Default 4.") var batchSize: Int?
    @Option(help: "sgd, adam or adamw. Default adam.") var optimizer: String?
    @Option(help: "Learning rate (backbone). Default 0.001.") var lr: Double?
    @Option(help: "Head learning rate. Default: --lr.") var headLr: Double?
    @Option(help: "SGD momentum. Default 0.9.") var momentum: Double?
    @Option(help: "Weight decay. Default 0.") var weightDecay: Double?
    @Option(help: "constant, cosine, linear or step. Default cosine.") var schedule: String?
    @Option(help: "Warm-up in epochs (fractions allowed). Default 0.") var warmup: Double?
    @Option(help: "ce (cross-entropy) or ordinal (cumulative bins, for grades). Default ce.") var loss: String?
    @Option(help: "Label smoothing for ce. Default 0.") var labelSmoothing: Double?
    @Option(help: "Clip the gradient norm to this value.") var clip: Double?
    @Option(help: "Random seed (weights, batch order, sampling, augmentation, dropout). Default 0.") var seed: UInt64?
    @Option(help: "Compute threads. Default: every core.") var workers: Int?

    @Option(help: "Validation split name. Default val.") var valSplit: String?
    @Option(help: "Validate on this fold and train on the other folds.") var valFold: Int?
    @Option(help: "Split scheme in the index. Default default.") var splitScheme: String?
    @Option(help: "Number of classes. Default: largest label + 1.") var classes: Int?
    @Option(help: "Metric that picks best.safetensors: kappa or accuracy. Default kappa.") var selectBy: String?
    @Option(help: "Largest grid side in patches. Default 64.") var maxGrid: Int?
    @Option(help: "Larger tissue: crop (centre) or coarser (another tiling of the dataset). Default crop.") var oversize: String?
    @Option(help: "imagenet, mnist, or mean0,mean1,mean2,std0,std1,std2. Default imagenet.") var normalization: String?
    @Flag(help: "Do not augment training patches (flips, rotations, colour jitter).") var noAugment = false
    @Option(help: "Colour-jitter strength. Default 0.1.") var colorJitter: Double?
    @Option(help: "GD: side of the downscaled image. Default 512.") var imageSize: Int?
    @Option(help: "Decoded patches kept in memory. Default 4096.") var cacheSize: Int?
    @Option(help: "Patches per backbone call in PatchGD's no-gradient fill pass (bounds its memory). Default 64.") var fillChunk: Int?
    @Option(help: "Stop each epoch after this many mini-batches (quick trials).") var limitBatches: Int?

    @Option(help: "efficienttrain: EfficientTrain++ curriculum (low resolution and weak augmentation first, stages of equal compute). Default none.") var curriculum: String?
    @Option(help: "Curriculum's low-resolution view: resize (Lanczos, EfficientTrain++) or fourier (spectrum crop, EfficientTrain). Default resize.") var lowPass: String?
    @Option(help: "Curriculum stages as resolution:magnitude on a 224 scale, e.g. 96:0,160:4,224:9. Default: the published 10 stages.") var curriculumStages: String?
    @Option(help: "RS2: train each epoch on this fraction of the training set, without replacement across epochs.") var subsetFraction: Double?

    /// The options given on the command line, by file name.
    func given() -> [String: Any] {
        var d: [String: Any] = [:]
        let values: [(String, Any?)] = [
            ("db", db), ("dataset", dataset), ("tiling", tiling), ("out", out), ("method", method), ("backbone", backbone),
            ("init", initWeights), ("latent", latent), ("head-features", headFeatures), ("head-dropout", headDropout),
            ("sampling", sampling), ("patches-per-step", patchesPerStep), ("inner-iterations", innerIterations), ("fill-statistics", fillStatistics),
            ("epochs", epochs), ("batch-size", batchSize), ("optimizer", optimizer), ("lr", lr), ("head-lr", headLr),
            ("momentum", momentum), ("weight-decay", weightDecay), ("schedule", schedule), ("warmup", warmup), ("loss", loss),
            ("label-smoothing", labelSmoothing), ("clip", clip), ("seed", seed), ("workers", workers), ("val-split", valSplit),
            ("val-fold", valFold), ("split-scheme", splitScheme), ("classes", classes), ("select-by", selectBy),
            ("max-grid", maxGrid), ("oversize", oversize), ("normalization", normalization), ("color-jitter", colorJitter),
            ("image-size", imageSize), ("cache-size", cacheSize), ("fill-chunk", fillChunk), ("limit-batches", limitBatches), ("curriculum", curriculum),
            ("low-pass", lowPass), ("curriculum-stages", curriculumStages), ("subset-fraction", subsetFraction)]
        for (key, value) in values { if let value { d[key] = value } }
        if noGradAccumulation { d["grad-accumulation"] = false }
        if noAugment { d["augment"] = false }
        return d
    }

    /// Saved options (on --resume), then the config file, then the command line.
    func options() throws -> TrainOptions {
        var merged: [String: Any] = [:]
        if resume {
            let fromConfig = try config.flatMap { try ConfigFile.load($0, allowed: TrainOptions.keys)["out"] as? String }
            guard let out = out ?? fromConfig else {
                throw ValidationError("--resume needs --out RUNDIR")
            }
            let saved = (out as NSString).appendingPathComponent("options.json")
            guard FileManager.default.fileExists(atPath: saved) else {
                throw ValidationError("\(saved): no saved options; is \(out) a run directory of gigapatch-train?")
            }
            merged = try ConfigFile.load(saved, allowed: TrainOptions.keys)
        }
        if let config { merged.merge(try ConfigFile.load(config, allowed: TrainOptions.keys)) { $1 } }
        merged.merge(given()) { $1 }
        return try ConfigFile.decode(TrainOptions.self, from: merged, source: config ?? "options")
    }

    func run() throws {
        let opts: TrainOptions
        do { opts = try options() } catch let error as ValidationError { throw error } catch {
            throw ValidationError("\(error)")
        }
        let interactive = isatty(STDERR_FILENO) == 1
        var lastLine = Date.distantPast
        let trainer = Trainer(options: opts, log: { line in
            FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
        }, progress: { p in
            let now = Date()
            guard p.batch == p.batches || now.timeIntervalSince(lastLine) >= (interactive ? 0.5 : 30) else { return }
            lastLine = now
            let eta = p.batch < p.batches ? ", ETA " + ProgressReporter.duration(p.elapsed / Double(p.batch) * Double(p.batches - p.batch)) : ""
            let text = String(format: "epoch %d/%d batch %d/%d loss %.4f %.0f patches/s", p.epoch, p.epochs, p.batch, p.batches, p.loss, p.rate) + eta
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + text : text + "\n").utf8))
        })
        do {
            let summary = try trainer.run(resume: resume)
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            var lines = ["run: \(summary.runDirectory)", "last checkpoint: \(summary.lastCheckpoint)"]
            if let best = summary.bestCheckpoint, let epoch = summary.bestEpoch, let score = summary.bestScore {
                lines.append(String(format: "best checkpoint: %@ (epoch %d, val %@ %.4f)", best, epoch, opts.selectBy, score))
            }
            print(lines.joined(separator: "\n"))
        } catch {
            FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + "gigapatch-train: \(error)\n").utf8))
            throw ExitCode(1)
        }
    }
}
