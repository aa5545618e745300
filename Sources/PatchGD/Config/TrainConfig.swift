import ArgumentParser
import Foundation
import NN

/// Every parameter of a training run, declared once: each option below is its command-line flag, its key in config
/// files and `RUNDIR/options.json` (the flag without the dashes), its type, its default and its help. Train and
/// predict share the groups they both need (`IndexOptions`, `ComputeOptions`).
///
/// Values are read in layers, later ones winning (`TrainConfig.resolve`):
/// defaults < the resumed run's `options.json` (with `--resume`) < the `--config` file < the command line.
///
/// Fields are reached through their group (`config.optimization.lr`) or directly (`config.lr`).
@dynamicMemberLookup
public struct TrainConfig: ParsableArguments, Sendable {
    @OptionGroup(title: "Patch index") public var index: IndexOptions
    @OptionGroup(title: "Data") public var data: DataOptions
    @OptionGroup(title: "Model") public var model: ModelOptions
    @OptionGroup(title: "Optimisation") public var optimization: OptimizationOptions
    @OptionGroup(title: "PatchGD") public var patchGD: PatchGDOptions
    @OptionGroup(title: "Curriculum and subsets") public var curricula: CurriculumOptions
    @OptionGroup(title: "Compute") public var compute: ComputeOptions
    @OptionGroup(title: "Run") public var output: RunOptions

    public init() {}

    /// Warm-up in epochs: `--warmup`, or by default 1 epoch when the backbone starts from `--init` weights and none
    /// otherwise. Measured on the demo (3 seeds): from a pretrained encoder without warm-up, PatchGD ends at 0.28
    /// validation accuracy against 0.71 with one epoch; the full learning rate on a new head wrecks the encoder.
    public var effectiveWarmup: Double { optimization.warmup ?? (model.initWeights == nil ? 0 : 1) }

    public subscript<T>(dynamicMember path: WritableKeyPath<IndexOptions, T>) -> T {
        get { index[keyPath: path] } set { index[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<DataOptions, T>) -> T {
        get { data[keyPath: path] } set { data[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<ModelOptions, T>) -> T {
        get { model[keyPath: path] } set { model[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<OptimizationOptions, T>) -> T {
        get { optimization[keyPath: path] } set { optimization[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<PatchGDOptions, T>) -> T {
        get { patchGD[keyPath: path] } set { patchGD[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<CurriculumOptions, T>) -> T {
        get { curricula[keyPath: path] } set { curricula[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<ComputeOptions, T>) -> T {
        get { compute[keyPath: path] } set { compute[keyPath: path] = newValue }
    }
    public subscript<T>(dynamicMember path: WritableKeyPath<RunOptions, T>) -> T {
        get { output[keyPath: path] } set { output[keyPath: path] = newValue }
    }
}

/// The patch index (train and predict).
public struct IndexOptions: ParsableArguments, Sendable {
    @Option(help: "Patch index written by gigapatch-ingest.") public var db: String = ""
    public init() {}
}

/// Which slides of the index train and validate, and how their grids are bounded.
public struct DataOptions: ParsableArguments, Sendable {
    @Option(help: "Dataset in the index (default: the only one).") public var dataset: String?
    @Option(help: "Tiling id (default: the only one; gigapatch-inspect --db lists them).") public var tiling: Int64?
    @Option(help: "Validation split name.") public var valSplit: String = "val"
    @Option(help: "Validate on this fold and train on the other folds.") public var valFold: Int?
    @Option(help: "Split scheme in the index.") public var splitScheme: String = "default"
    @Option(help: "Number of classes (default: largest label + 1).") public var classes: Int?
    @Option(help: "Largest grid side in patches.") public var maxGrid: Int = 64
    @Option(help: "Larger tissue: crop (centre) or coarser (another tiling of the dataset).") public var oversize: OversizePolicy = .crop
    @Option(help: "Stain target (gigapatch-stain fit) applied to every patch as it is read, before caching; recorded in the checkpoint, so prediction applies it too.")
    public var stainNormalize: String?
    public init() {}

    public func validate() throws {
        try check(classes.map { $0 >= 2 } ?? true, "--classes must be at least 2, not \(classes ?? 0)")
        try check(maxGrid > 0, "--max-grid must be positive, not \(maxGrid)")
        try check(valFold.map { $0 >= 0 } ?? true, "--val-fold must be 0 or more")
    }
}

/// What is trained: method, backbone, head, input normalisation.
public struct ModelOptions: ParsableArguments, Sendable {
    @Option(help: "patchgd, or gd (the whole image downscaled to --image-size).") public var method: MethodChoice = .patchgd
    @Option(help: "tiny, resnet18, resnet34, resnet50 or mobilenet_v2.") public var backbone: String = "resnet18"
    @Option(name: .customLong("init"), help: "Initial backbone weights: a .safetensors file with torchvision names, or a Gigapatch checkpoint (its backbone.* tensors); the final projection stays new.")
    public var initWeights: String?
    @Option(help: "Latent dimension C of Z.") public var latent: Int = 256
    @Option(help: "Head width F.") public var headFeatures: Int = 256
    @Option(help: "Head Dropout2d probability, 0 <= p < 1.") public var headDropout: Double = 0.2
    @Option(help: "Head strides: adaptive (stride only while maps stay 2 x 2 or larger; identical to the reference head on 16 x 16 and larger grids) or fixed (the reference head; a 4 x 4 grid is 1 x 1 after two blocks).")
    public var headStrides: HeadStrides = .adaptive
    @Option(help: "imagenet, mnist, or mean0,mean1,mean2,std0,std1,std2.") public var normalization: String = "imagenet"
    @Option(help: "GD: side of the downscaled image.") public var imageSize: Int = 512
    public init() {}

    public func validate() throws {
        try check(Model.backbones.contains(backbone), "--backbone must be one of \(Model.backbones.joined(separator: ", ")), not '\(backbone)'")
        try check(latent > 0 && headFeatures > 0, "--latent and --head-features must be positive")
        try check(headDropout >= 0 && headDropout < 1, "--head-dropout must be in [0, 1), not \(headDropout)")
        try check(imageSize >= 32, "--image-size must be at least 32, not \(imageSize)")
        _ = try normalizationValue()
    }

    /// The normalisation named by `normalization`.
    public func normalizationValue() throws -> Normalization {
        if let preset = Normalization.presets[normalization] { return preset }
        let numbers = normalization.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard numbers.count == 6, numbers.allSatisfy(\.isFinite), numbers[3...].allSatisfy({ $0 > 0 }) else {
            throw TrainingError("invalid option: --normalization must be \(Normalization.presets.keys.sorted().joined(separator: " or ")) or six numbers mean0,mean1,mean2,std0,std1,std2, not '\(normalization)'", kind: .badOption)
        }
        return Normalization(mean: Array(numbers[0 ..< 3]), std: Array(numbers[3 ..< 6]))
    }
}

/// How the weights move: epochs, batch, optimizer, schedule, loss, augmentation, seed.
public struct OptimizationOptions: ParsableArguments, Sendable {
    @Option(help: "Epochs.") public var epochs: Int = 10
    @Option(help: "Images per mini-batch.") public var batchSize: Int = 4
    @Option(help: "sgd, adam or adamw.") public var optimizer: OptimizerChoice = .adam
    @Option(help: "Learning rate (backbone).") public var lr: Double = 1e-3
    @Option(help: "Head learning rate (default: --lr).") public var headLr: Double?
    @Option(help: "SGD momentum.") public var momentum: Double = 0.9
    @Option(help: "Weight decay.") public var weightDecay: Double = 0
    @Option(help: "constant, cosine, linear or step.") public var schedule: ScheduleChoice = .cosine
    @Option(help: "Warm-up in epochs (fractions allowed; default: 1 with --init, else 0: from pretrained weights, no warm-up can wreck them, EXPERIMENTS.md).")
    public var warmup: Double?
    @Option(help: "ce (cross-entropy) or ordinal (cumulative bins, for grades).") public var loss: LossKind = .ce
    @Option(help: "Label smoothing for ce, 0 <= e < 1.") public var labelSmoothing: Double = 0
    @Option(help: "Clip the gradient norm to this value.") public var clip: Double?
    @Option(help: "Random seed (weights, batch order, sampling, augmentation, dropout).") public var seed: UInt64 = 0
    @Option(help: "Metric that picks best.safetensors: kappa or accuracy.") public var selectBy: SelectBy = .kappa
    @Flag(inversion: .prefixedNo, help: "Augment training patches (flips, rotations, colour jitter); --no-augment turns it off.")
    public var augment: Bool = true
    @Option(help: "Colour-jitter strength.") public var colorJitter: Double = 0.1
    @Option(help: "Augmentation preset: basic (flips, quarter turns, colour jitter) or he (basic plus HED jitter, hue, blur and noise, for H&E slides). The strengths below override the preset's.")
    public var augmentation: AugmentationPreset = .basic
    @Option(help: "HED stain jitter strength: alpha in [1-s, 1+s], beta in [-s, s] (default: the preset's; he 0.05).") public var hedJitter: Double?
    @Option(help: "Largest hue turn, as a fraction of a full turn (default: the preset's; he 0.04).") public var hueJitter: Double?
    @Option(help: "Largest Gaussian blur sigma in pixels (default: the preset's; he 1).") public var blur: Double?
    @Option(help: "Largest Gaussian noise standard deviation, intensities 0-1 (default: the preset's; he 0.02).") public var noise: Double?
    public init() {}

    /// The augmentation a training run applies (none with --no-augment).
    public var augmentationSettings: AugmentationSettings {
        guard augment else { return .none }
        var s = augmentation.settings
        s.colorJitter = colorJitter
        if let hedJitter { s.hedJitter = hedJitter }
        if let hueJitter { s.hueJitter = hueJitter }
        if let blur { s.blur = blur }
        if let noise { s.noise = noise }
        return s
    }

    public func validate() throws {
        try check(epochs > 0, "--epochs must be positive, not \(epochs)")
        try check(batchSize > 0, "--batch-size must be positive, not \(batchSize)")
        try check(lr.isFinite && lr > 0, "--lr must be a positive number, not \(lr)")
        try check(headLr.map { $0.isFinite && $0 > 0 } ?? true, "--head-lr must be a positive number, not \(headLr ?? 0)")
        try check(momentum.isFinite && momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), not \(momentum)")
        try check(weightDecay.isFinite && weightDecay >= 0, "--weight-decay must be a number >= 0, not \(weightDecay)")
        try check(warmup.map { $0.isFinite && $0 >= 0 } ?? true, "--warmup must be a number of epochs >= 0, not \(warmup ?? 0)")
        try check(labelSmoothing >= 0 && labelSmoothing < 1, "--label-smoothing must be in [0, 1), not \(labelSmoothing)")
        try check(clip.map { $0.isFinite && $0 > 0 } ?? true, "--clip must be a positive number, not \(clip ?? 0)")
        try check(colorJitter.isFinite && colorJitter >= 0 && colorJitter <= 1, "--color-jitter must be in [0, 1], not \(colorJitter)")
        try check(hedJitter.map { $0.isFinite && $0 >= 0 && $0 < 1 } ?? true, "--hed-jitter must be in [0, 1), not \(hedJitter ?? 0)")
        try check(hueJitter.map { $0.isFinite && $0 >= 0 && $0 <= 0.5 } ?? true, "--hue-jitter must be in [0, 0.5], not \(hueJitter ?? 0)")
        try check(blur.map { $0.isFinite && $0 >= 0 && $0 <= 16 } ?? true, "--blur must be a sigma in [0, 16] pixels, not \(blur ?? 0)")
        try check(noise.map { $0.isFinite && $0 >= 0 && $0 <= 1 } ?? true, "--noise must be in [0, 1], not \(noise ?? 0)")
    }
}

/// PatchGD's inner loop: how many patches are recomputed with gradients, and how Z is filled.
public struct PatchGDOptions: ParsableArguments, Sendable {
    @Option(help: "Fraction s of patches recomputed with gradients per inner iteration, 0 < s <= 1.") public var sampling: Double = 1.0 / 8
    @Option(help: "Fixed k patches per image per inner iteration (bounds memory); overrides --sampling.") public var patchesPerStep: Int?
    @Option(help: "Inner iterations per mini-batch (default: one sweep, ceil(patches / k)).") public var innerIterations: Int?
    @Flag(inversion: .prefixedNo, help: "Accumulate gradients over the inner iterations and step once per mini-batch; --no-grad-accumulation steps after every inner iteration.")
    public var gradAccumulation: Bool = true
    @Option(help: "BatchNorm statistics of the training fill pass: running (evaluation mode) or batch.")
    public var fillStatistics: FillStatistics = .running
    @Option(help: "BatchNorm while training: train (batch statistics, running ones updated) or frozen (running statistics, never updated: fine-tuning a pretrained encoder, and data-parallel runs whose result does not depend on the rank count).")
    public var batchNorm: BatchNormMode = .train
    @Option(help: "Before each validation, recompute BatchNorm's running statistics as the average over this many training mini-batches (forward passes only, no augmentation); 0: keep the running averages of training.")
    public var bnRecalibration: Int = 10
    public init() {}

    public func validate() throws {
        try check(sampling > 0 && sampling <= 1, "--sampling must be in (0, 1], not \(sampling)")
        try check(patchesPerStep.map { $0 > 0 } ?? true, "--patches-per-step must be positive")
        try check(innerIterations.map { $0 > 0 } ?? true, "--inner-iterations must be positive")
    }
}

/// EfficientTrain++ curricula and RS2 subsets.
public struct CurriculumOptions: ParsableArguments, Sendable {
    @Option(help: "efficienttrain: EfficientTrain++ curriculum (low resolution and weak augmentation first, stages of equal compute).")
    public var curriculum: CurriculumChoice = .none
    @Option(help: "Curriculum's low-resolution view: resize (Lanczos, EfficientTrain++) or fourier (spectrum crop, EfficientTrain).")
    public var lowPass: LowPassMethod = .resize
    @Option(help: "Curriculum stages as resolution:magnitude on a 224 scale, e.g. 96:0,160:4,224:9 (default: the published 10 stages).")
    public var curriculumStages: String?
    @Option(help: "RS2: train each epoch on this fraction of the training set, without replacement across epochs.")
    public var subsetFraction: Double?
    public init() {}

    public func validate() throws {
        try check(subsetFraction.map { $0 > 0 && $0 <= 1 } ?? true, "--subset-fraction must be in (0, 1], not \(subsetFraction ?? 0)")
        _ = try curriculumStageList()
    }

    /// The curriculum's stages, when one is asked for.
    public func curriculumStageList() throws -> [CurriculumStage]? {
        guard curriculum == .efficienttrain else { return nil }
        guard let text = curriculumStages else { return Curriculum.published }
        guard let stages = Curriculum.parse(text) else {
            throw TrainingError("invalid option: --curriculum-stages must be resolution:magnitude pairs such as 96:0,160:4,224:9 (resolutions 1...224), not '\(text)'", kind: .badOption)
        }
        return stages
    }
}

/// Threads and memory bounds (train and predict).
public struct ComputeOptions: ParsableArguments, Sendable {
    @Option(help: "Compute threads (0: every core).") public var workers: Int = 0
    @Option(help: "Decoded patches kept in memory.") public var cacheSize: Int = 4096
    @Option(help: "Patches per backbone call in PatchGD's no-gradient fill pass (bounds its memory).") public var fillChunk: Int = 64
    @Option(help: "Matrix products of convolutions and linear layers: fp32, or bf16 (mixed precision as PyTorch's CPU autocast: bfloat16 operands, float32 sums, weights, gradients and checkpoints; needs AVX512_BF16, else the run says so and uses fp32).")
    public var precision: Precision = .fp32
    public init() {}

    public func validate() throws {
        try check(workers >= 0, "--workers must be 0 (every core) or more, not \(workers)")
        try check(cacheSize >= 0, "--cache-size must not be negative")
        try check(fillChunk > 0, "--fill-chunk must be positive")
    }
}

/// Where the run goes and how it starts.
public struct RunOptions: ParsableArguments, Sendable {
    @Option(help: "Run directory (created).") public var out: String = ""
    @Option(help: "YAML or JSON file of options (keys as the flags without dashes; see README).") public var config: String?
    @Flag(help: "Continue the run in --out from checkpoints/last.safetensors with the options saved there (options given again override them).")
    public var resume: Bool = false
    @Option(help: "Stop each epoch after this many mini-batches (quick trials).") public var limitBatches: Int?
    @Option(help: ArgumentHelp("Wall-clock limit of this invocation (a batch job's allocation): no epoch starts that would end after it; the run stops with its last epoch committed and exit status 75, and --resume continues it. 90m, 1h30m, 5400s, or Slurm's H:MM:SS and D-HH:MM:SS. Not saved with the run.", valueName: "duration"))
    public var timeLimit: TimeLimit?
    @Option(help: "Patches that cannot be read (corrupt tiles) are read as background and listed in RUNDIR/bad-patches.csv; the run stops when more than this fraction of its patches are bad.")
    public var maxBadPatches: Double = 0.01
    public init() {}

    public func validate() throws {
        try check(limitBatches.map { $0 > 0 } ?? true, "--limit-batches must be positive")
        try check(maxBadPatches >= 0 && maxBadPatches <= 1, "--max-bad-patches must be a fraction in [0, 1], not \(maxBadPatches)")
    }
}

/// Throws a bad-option `TrainingError` with `message` unless `condition` holds.
func check(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    guard condition else { throw TrainingError("invalid option: \(message())", kind: .badOption) }
}
