import Foundation
import NN

/// Every parameter of a training run, named as `gigapatch-train`'s options (`RUNDIR/options.json` and `--config` use
/// the same names), with the defaults documented in the README.
public struct TrainOptions: Sendable, Equatable, Codable {
    public var db: String = ""
    public var dataset: String?
    public var tiling: Int64?
    public var out: String = ""
    /// patchgd | gd
    public var method: String = "patchgd"
    public var backbone: String = "resnet18"
    /// Initial backbone weights (e.g. ImageNet weights converted from torchvision); the final projection is kept new.
    public var initWeights: String?
    public var latent: Int = 256
    public var headFeatures: Int = 256
    public var headDropout: Double = 0.2
    public var sampling: Double = 1.0 / 8
    public var patchesPerStep: Int?
    public var innerIterations: Int?
    public var gradAccumulation: Bool = true
    /// BatchNorm statistics of the training fill pass: running or batch.
    public var fillStatistics: FillStatistics = .running
    public var epochs: Int = 10
    public var batchSize: Int = 4
    /// sgd | adam | adamw
    public var optimizer: String = "adam"
    public var lr: Double = 1e-3
    public var headLR: Double?
    public var momentum: Double = 0.9
    public var weightDecay: Double = 0
    /// constant | cosine | linear | step
    public var schedule: String = "cosine"
    /// Warm-up length in epochs (may be fractional).
    public var warmup: Double = 0
    /// ce | ordinal
    public var loss: String = "ce"
    public var labelSmoothing: Double = 0
    /// Gradient-norm clipping (nil = none).
    public var clip: Double?
    public var seed: UInt64 = 0
    /// Worker threads for compute (0 = every core).
    public var workers: Int = 0
    /// Validation split name (under `splitScheme`), used unless `valFold` is given.
    public var valSplit: String = "val"
    /// When set: slides of this fold validate and slides of every other fold train (k-fold cross-validation).
    public var valFold: Int?
    public var splitScheme: String = "default"
    public var classes: Int?
    /// Metric that picks `best.safetensors`: kappa | accuracy.
    public var selectBy: String = "kappa"
    public var maxGrid: Int = 64
    public var oversize: OversizePolicy = .crop
    /// Normalisation preset name (imagenet | mnist) or six numbers "m0,m1,m2,s0,s1,s2".
    public var normalization: String = "imagenet"
    public var augment: Bool = true
    public var colorJitter: Double = 0.1
    /// GD: side of the downscaled whole image.
    public var imageSize: Int = 512
    /// Decoded patches kept in memory.
    public var cacheSize: Int = 4096
    /// Patches encoded per backbone call in PatchGD's no-gradient fill pass (bounds its memory).
    public var fillChunk: Int = 64
    /// Stop each epoch after this many batches (quick trials); nil = all.
    public var limitBatches: Int?
    /// none | efficienttrain (EfficientTrain++: low resolution and weak augmentation first, in stages of equal compute).
    public var curriculum: String = "none"
    /// How the curriculum's low-resolution view is made: resize (Lanczos, EfficientTrain++) or fourier (spectrum crop).
    public var lowPass: LowPassMethod = .resize
    /// Curriculum stages as resolution:magnitude pairs on a 224 px scale; nil = the published ResNet-50 schedule.
    public var curriculumStages: String?
    /// RS2: train each epoch on this fraction of the training set, drawn without replacement across epochs.
    public var subsetFraction: Double?

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case db, dataset, tiling, out, method, backbone, initWeights = "init", latent, headFeatures = "head-features"
        case headDropout = "head-dropout", sampling, patchesPerStep = "patches-per-step", innerIterations = "inner-iterations"
        case gradAccumulation = "grad-accumulation", fillStatistics = "fill-statistics", epochs, batchSize = "batch-size", optimizer, lr, headLR = "head-lr"
        case momentum, weightDecay = "weight-decay", schedule, warmup, loss, labelSmoothing = "label-smoothing", clip, seed, workers
        case valSplit = "val-split", valFold = "val-fold", splitScheme = "split-scheme", classes, selectBy = "select-by"
        case maxGrid = "max-grid", oversize, normalization, augment, colorJitter = "color-jitter", imageSize = "image-size"
        case cacheSize = "cache-size", fillChunk = "fill-chunk", limitBatches = "limit-batches", curriculum, lowPass = "low-pass"
        case curriculumStages = "curriculum-stages", subsetFraction = "subset-fraction"
    }

    /// Option names as written in files and on the command line.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Decodes with every absent key at its default, so a config file names only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainOptions()
        func v<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: key) ?? fallback }
        db = try v(.db, d.db); dataset = try v(.dataset, d.dataset); tiling = try v(.tiling, d.tiling); out = try v(.out, d.out)
        method = try v(.method, d.method); backbone = try v(.backbone, d.backbone); initWeights = try v(.initWeights, d.initWeights)
        latent = try v(.latent, d.latent); headFeatures = try v(.headFeatures, d.headFeatures); headDropout = try v(.headDropout, d.headDropout)
        sampling = try v(.sampling, d.sampling); patchesPerStep = try v(.patchesPerStep, d.patchesPerStep)
        innerIterations = try v(.innerIterations, d.innerIterations); gradAccumulation = try v(.gradAccumulation, d.gradAccumulation)
        fillStatistics = try v(.fillStatistics, d.fillStatistics)
        epochs = try v(.epochs, d.epochs); batchSize = try v(.batchSize, d.batchSize); optimizer = try v(.optimizer, d.optimizer)
        lr = try v(.lr, d.lr); headLR = try v(.headLR, d.headLR); momentum = try v(.momentum, d.momentum)
        weightDecay = try v(.weightDecay, d.weightDecay); schedule = try v(.schedule, d.schedule); warmup = try v(.warmup, d.warmup)
        loss = try v(.loss, d.loss); labelSmoothing = try v(.labelSmoothing, d.labelSmoothing); clip = try v(.clip, d.clip)
        seed = try v(.seed, d.seed); workers = try v(.workers, d.workers); valSplit = try v(.valSplit, d.valSplit)
        valFold = try v(.valFold, d.valFold); splitScheme = try v(.splitScheme, d.splitScheme); classes = try v(.classes, d.classes)
        selectBy = try v(.selectBy, d.selectBy); maxGrid = try v(.maxGrid, d.maxGrid); oversize = try v(.oversize, d.oversize)
        normalization = try v(.normalization, d.normalization); augment = try v(.augment, d.augment)
        colorJitter = try v(.colorJitter, d.colorJitter); imageSize = try v(.imageSize, d.imageSize)
        cacheSize = try v(.cacheSize, d.cacheSize); fillChunk = try v(.fillChunk, d.fillChunk); limitBatches = try v(.limitBatches, d.limitBatches)
        curriculum = try v(.curriculum, d.curriculum); lowPass = try v(.lowPass, d.lowPass)
        curriculumStages = try v(.curriculumStages, d.curriculumStages); subsetFraction = try v(.subsetFraction, d.subsetFraction)
    }

    /// The curriculum's stages, when one is asked for.
    public func curriculumStageList() throws -> [CurriculumStage]? {
        guard curriculum == "efficienttrain" else { return nil }
        guard let text = curriculumStages else { return Curriculum.published }
        guard let stages = Curriculum.parse(text) else {
            throw TrainingError("invalid option: --curriculum-stages must be resolution:magnitude pairs such as 96:0,160:4,224:9 (resolutions 1...224), not '\(text)'")
        }
        return stages
    }

    /// Checks every value; the message names the option and the accepted values.
    public func validate() throws {
        func fail(_ s: String) -> TrainingError { TrainingError("invalid option: \(s)") }
        guard !db.isEmpty else { throw fail("--db is required (the patch index written by gigapatch-ingest)") }
        guard !out.isEmpty else { throw fail("--out is required (the run directory)") }
        guard ["patchgd", "gd"].contains(method) else { throw fail("--method must be patchgd or gd, not '\(method)'") }
        guard Model.backbones.contains(backbone) else { throw fail("--backbone must be one of \(Model.backbones.joined(separator: ", ")), not '\(backbone)'") }
        guard ["sgd", "adam", "adamw"].contains(optimizer) else { throw fail("--optimizer must be sgd, adam or adamw, not '\(optimizer)'") }
        guard ["constant", "cosine", "linear", "step"].contains(schedule) else { throw fail("--schedule must be constant, cosine, linear or step, not '\(schedule)'") }
        guard ["ce", "ordinal"].contains(loss) else { throw fail("--loss must be ce or ordinal, not '\(loss)'") }
        guard ["kappa", "accuracy"].contains(selectBy) else { throw fail("--select-by must be kappa or accuracy, not '\(selectBy)'") }
        guard sampling > 0, sampling <= 1 else { throw fail("--sampling must be in (0, 1], not \(sampling)") }
        guard patchesPerStep.map({ $0 > 0 }) ?? true else { throw fail("--patches-per-step must be positive") }
        guard innerIterations.map({ $0 > 0 }) ?? true else { throw fail("--inner-iterations must be positive") }
        guard epochs > 0, batchSize > 0, latent > 0, headFeatures > 0, maxGrid > 0, imageSize >= 32 else {
            throw fail("--epochs, --batch-size, --latent, --head-features and --max-grid must be positive and --image-size at least 32")
        }
        guard lr > 0, (headLR ?? 1) > 0, weightDecay >= 0, warmup >= 0 else { throw fail("--lr and --head-lr must be positive, --weight-decay and --warmup not negative") }
        guard fillChunk > 0, cacheSize >= 0 else { throw fail("--fill-chunk must be positive and --cache-size not negative") }
        guard classes.map({ $0 >= 2 }) ?? true else { throw fail("--classes must be at least 2") }
        guard ["none", "efficienttrain"].contains(curriculum) else { throw fail("--curriculum must be none or efficienttrain, not '\(curriculum)'") }
        guard subsetFraction.map({ $0 > 0 && $0 <= 1 }) ?? true else { throw fail("--subset-fraction must be in (0, 1]") }
        _ = try curriculumStageList()
        _ = try normalizationValue()
    }

    /// The normalisation named by `normalization`.
    public func normalizationValue() throws -> Normalization {
        if let preset = Normalization.presets[normalization] { return preset }
        let numbers = normalization.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard numbers.count == 6, numbers[3...].allSatisfy({ $0 > 0 }) else {
            throw TrainingError("invalid option: --normalization must be \(Normalization.presets.keys.sorted().joined(separator: " or ")) or six numbers mean0,mean1,mean2,std0,std1,std2, not '\(normalization)'")
        }
        return Normalization(mean: Array(numbers[0 ..< 3]), std: Array(numbers[3 ..< 6]))
    }

    /// The options as canonical JSON (sorted keys), as stored in `options.json` and the runs table.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
