import Foundation
import Seeded

/// Where a run goes, answered per global mini-batch index g (epoch * batchesPerEpoch + batch): the learning-rate
/// factor, the curriculum stage and the view it trains on (resolution, augmentation), and which training examples
/// each epoch takes, in which order. Pure: the same options and training-set size give the same answers, which is what
/// makes `--resume` exact.
struct TrainingSchedule {
    let batchesPerEpoch: Int
    let totalBatches: Int
    let curriculum: Curriculum?
    let subset: SubsetSampler?
    let scheduleKind: ScheduleChoice
    /// Warm-up as a fraction of the run's compute.
    let warmup: Double
    let seed: UInt64
    let lowPass: LowPassMethod
    let augmentation: AugmentationSettings

    var epochs: Int { (totalBatches + batchesPerEpoch - 1) / batchesPerEpoch }

    init(options: TrainConfig, trainCount: Int) throws {
        let perEpoch = options.subsetFraction.map { SubsetSampler(count: trainCount, fraction: $0, seed: options.seed) }
        subset = perEpoch
        let examples = perEpoch?.perEpoch ?? trainCount
        let full = (examples + options.batchSize - 1) / options.batchSize
        batchesPerEpoch = min(full, options.limitBatches ?? full)
        if let stages = try options.curricula.curriculumStageList() {
            let c = Curriculum(stages: stages, epochs: options.epochs, batchesPerEpoch: batchesPerEpoch)
            curriculum = c
            totalBatches = c.totalBatches
        } else {
            curriculum = nil
            totalBatches = options.epochs * batchesPerEpoch
        }
        scheduleKind = options.schedule
        // Warm-up is given in epochs of the plain run; as a fraction of the compute it is the same with a curriculum.
        warmup = min(1, options.effectiveWarmup / Double(options.epochs))
        seed = options.seed
        lowPass = options.lowPass
        augmentation = options.optimization.augmentationSettings
    }

    /// Mini-batches of `epoch` (the last one may be cut short by a curriculum's total).
    func batches(inEpoch epoch: Int) -> Int { min(batchesPerEpoch, totalBatches - epoch * batchesPerEpoch) }

    /// Fraction of the run's compute spent before mini-batch g.
    func progress(at g: Int) -> Double { curriculum?.progress(at: g) ?? Double(g) / Double(max(1, totalBatches)) }

    func stage(at g: Int) -> CurriculumStage? { curriculum.map { $0.stages[$0.stageIndex(at: g)] } }

    /// The learning-rate factor for mini-batch g.
    func learningRateFactor(at g: Int) -> Float { Self.lrFactor(schedule: scheduleKind, progress: progress(at: g), warmup: warmup) }

    /// How mini-batch g is shown: full resolution with the base augmentation, or the curriculum stage's view.
    func view(at g: Int) -> TrainingView {
        var view = TrainingView(side: nil, lowPass: lowPass, augmentation: augmentation)
        if let curriculum, let stage = stage(at: g) {
            view.side = stage.resolution < 224 ? stage.resolution : nil
            view.augmentation = augmentation.scaled(magnitude: stage.magnitude, of: curriculum.stages.map(\.magnitude).max() ?? 0)
        }
        return view
    }

    /// Training examples of an epoch in order: a fresh permutation, or RS2's next slice.
    func order(epoch: Int, count: Int) -> [Int] {
        if let subset { return subset.epoch(epoch) }
        var order = Array(0 ..< count)
        var rng = SplitMix64(seed: seed).derived(2, UInt64(epoch))
        order.shuffle(using: &rng)
        return order
    }

    /// The learning-rate factor at `progress` (0 ..< 1, the fraction of the run's compute spent) with a warm-up over
    /// the first `warmup` fraction. The position is compute, not epochs, so a curriculum's cheap low-resolution
    /// stages advance it less per mini-batch and the schedule runs continuously across stages.
    static func lrFactor(schedule: ScheduleChoice, progress: Double, warmup: Double) -> Float {
        if progress < warmup { return Float(min(1, (progress + 1e-12) / warmup)) }
        let t = warmup < 1 ? (progress - warmup) / (1 - warmup) : 1
        switch schedule {
        case .cosine: return Float(0.5 * (1 + cos(Double.pi * min(1, t))))
        case .linear: return Float(max(0, 1 - t))
        case .step: return Float(pow(0.1, Double(min(2, Int(t * 3)))))
        case .constant: return 1
        }
    }
}
