import NN
import Stain

/// Builds what a checkpoint describes, for training, prediction and benchmarks alike: the models from
/// `CheckpointInfo` alone (weights freshly initialised from a seed, to be trained or loaded), and the method that
/// drives them, with optimizers only when it is to train.
public enum ModelFactory {
    /// The backbone: a patch encoder with `latent` outputs (PatchGD), or the whole-image classifier (GD).
    public static func backbone(_ info: CheckpointInfo, seed: UInt64) -> Model {
        let outputs = info.method == .gd ? info.loss.outputs(classes: info.classes) : info.latent
        guard let model = Model.backbone(info.backbone, outputs: outputs, seed: seed) else {
            preconditionFailure("unknown backbone '\(info.backbone)' (options and checkpoints are validated before this)")
        }
        return model
    }

    /// PatchGD's head over Z; nil for GD.
    public static func head(_ info: CheckpointInfo, seed: UInt64) -> Model? {
        guard info.method == .patchgd else { return nil }
        return PatchGDHead.make(latent: info.latent, features: info.headFeatures, classes: info.loss.outputs(classes: info.classes),
                                dropout: Float(info.headDropout), adaptiveStrides: info.headStrides == .adaptive, seed: seed &+ 1)
    }

    /// PatchGD's backbone and head built as a run with these settings builds them, for benchmarks and experiments that
    /// have no checkpoint (cross-entropy over `classes`); nil for an unknown backbone.
    public static func patchGDModels(backbone: String, latent: Int, headFeatures: Int = 256, headDropout: Double = 0.2, headStrides: HeadStrides = .adaptive,
                                     classes: Int, seed: UInt64) -> (backbone: Model, head: Model)? {
        guard Model.backbones.contains(backbone) else { return nil }
        let info = CheckpointInfo(method: .patchgd, backbone: backbone, latent: latent, headFeatures: headFeatures, headDropout: headDropout,
                                  classes: classes, loss: .ce, normalization: .imagenet, patchSize: 0, imageSize: 0, maxGrid: 0,
                                  oversize: .crop, dataset: "", tilingID: 0, tilingParams: "{}", splitScheme: "", selectBy: .kappa, headStrides: headStrides)
        return (self.backbone(info, seed: seed), head(info, seed: seed)!)
    }

    /// The method for `info`: trainable when `training` is given, prediction-only (no optimizers) otherwise.
    static func method(_ info: CheckpointInfo, seed: UInt64, compute: ComputeOptions, training: TrainingSetup?) -> TrainingMethod {
        let backbone = backbone(info, seed: seed)
        let precision = BFloat16.resolve(compute.precision).precision
        let smoothing = training?.labelSmoothing ?? 0, loss = info.loss
        let lossFunction = { (logits: Tensor, targets: [Int]) in loss.loss(logits, targets, smoothing: smoothing) }
        guard let head = head(info, seed: seed) else {
            let gd = GDMethod(model: backbone, optimizer: training?.optimizer(for: backbone, head: false),
                              images: WholeImageReader(size: info.imageSize, normalization: info.normalization, capacity: 256,
                                                       stain: info.stain.map(StainNormalizer.init)),
                              seed: seed, batchNorm: training?.patchGD.batchNorm ?? .train, loss: lossFunction)
            gd.precision = precision
            return gd
        }
        let core = PatchGD(backbone: backbone, head: head, config: training?.patchGD ?? PatchGDConfig(),
                           backboneOptimizer: training?.optimizer(for: backbone, head: false),
                           headOptimizer: training?.optimizer(for: head, head: true))
        core.fillChunk = compute.fillChunk
        core.precision = precision
        let reader = PatchReader(patchSize: info.patchSize, normalization: info.normalization, cacheCapacity: compute.cacheSize,
                                 stain: info.stain.map(StainNormalizer.init))
        return PatchGDMethod(core: core, reader: reader, seed: seed, loss: lossFunction)
    }
}

/// How a method trains: its optimizers, loss smoothing and PatchGD's inner loop, from the run's options.
struct TrainingSetup {
    var optimizer: OptimizerKind
    var learningRate: Float
    var headLearningRate: Float
    var weightDecay: Float
    var labelSmoothing: Float
    var patchGD: PatchGDConfig

    init(_ config: TrainConfig) {
        switch config.optimizer {
        case .sgd: optimizer = .sgd(momentum: Float(config.momentum))
        case .adamw: optimizer = .adamW()
        case .adam: optimizer = .adam()
        }
        learningRate = Float(config.lr)
        headLearningRate = Float(config.headLr ?? config.lr)
        weightDecay = Float(config.weightDecay)
        labelSmoothing = Float(config.labelSmoothing)
        patchGD = PatchGDConfig(sampling: config.sampling, patchesPerStep: config.patchesPerStep, innerIterations: config.innerIterations,
                                accumulate: config.gradAccumulation, fillStatistics: config.fillStatistics, batchNorm: config.batchNorm)
    }

    func optimizer(for model: Model, head: Bool) -> Optimizer {
        Optimizer(optimizer, store: model.store, learningRate: head ? headLearningRate : learningRate, weightDecay: weightDecay)
    }
}
