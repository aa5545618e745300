import Foundation
import NN
import Seeded
import Testing
@testable import PatchGD

struct FFTTests {
    /// The radix-2 and Bluestein paths agree with the direct DFT, forward and inverse.
    @Test(arguments: [1, 2, 8, 64, 5, 55, 96, 97])
    func fastTransformMatchesDirectDFT(n: Int) {
        var rng = SplitMix64(seed: UInt64(n))
        let re = (0 ..< n).map { _ in Double.random(in: -1 ... 1, using: &rng) }, im = (0 ..< n).map { _ in Double.random(in: -1 ... 1, using: &rng) }
        for inverse in [false, true] {
            var fr = re, fi = im
            FFT.transform(&fr, &fi, inverse: inverse)
            let (dr, di) = FFT.direct(re, im, inverse: inverse)
            let error = zip(fr + fi, dr + di).map { abs($0 - $1) }.max() ?? 0
            #expect(error < 1e-9 * Double(max(1, n)), "n \(n) inverse \(inverse): max error \(error)")
        }
    }

    /// Fourier crop of a pattern made only of frequencies the crop keeps returns that pattern at the smaller size
    /// (within float error); a pattern above the cut-off is removed, leaving its mean.
    @Test func fourierCropKeepsLowAndRemovesHighFrequencies() {
        let n = 64, b = 24
        func pattern(_ side: Int, _ f: Double, _ g: Double) -> [Float] {
            (0 ..< side * side).map { i in
                let y = Double(i / side), x = Double(i % side)
                return Float(0.5 + 0.3 * cos(2 * .pi * f * x / Double(side)) + 0.2 * sin(2 * .pi * g * y / Double(side) + 0.4))
            }
        }
        let low = LowResolution.fourierCrop(pattern(n, 3, 5), side: n, to: b)
        let expected = pattern(b, 3, 5)
        #expect(zip(low, expected).map { abs($0 - $1) }.max()! < 1e-5)
        let high = LowResolution.fourierCrop(pattern(n, 20, 17), side: n, to: b)   // frequencies above b/2 = 12
        #expect(high.map { abs($0 - 0.5) }.max()! < 1e-5)
        // Lanczos: a constant stays constant, a smooth ramp stays a ramp.
        let flat = LowResolution.lanczos([Float](repeating: 0.25, count: n * n), side: n, to: b)
        #expect(flat.allSatisfy { abs($0 - 0.25) < 1e-6 })
    }
}

struct CurriculumTests {
    /// The published schedule: 10 stages of equal compute, low-resolution stages (224/B)^2 times as many mini-batches.
    @Test func stageBoundariesAndBatchesPerStage() {
        let c = Curriculum(epochs: 10, batchesPerEpoch: 100)   // 1000 full-resolution mini-batches of compute, 100 per stage
        #expect(c.stages.map(\.resolution) == [96, 96, 160, 160, 160, 160, 224, 224, 224, 224])
        #expect(c.stages.map(\.magnitude) == Array(0 ... 9))
        // 100 * (224/96)^2 = 544.4 -> 544; 100 * (224/160)^2 = 196; 100 at full resolution.
        #expect(c.batches == [544, 544, 196, 196, 196, 196, 100, 100, 100, 100])
        #expect(c.starts[2] == 1088 && c.totalBatches == 2272)
        #expect(c.stageIndex(at: 0) == 0 && c.stageIndex(at: 543) == 0 && c.stageIndex(at: 544) == 1 && c.stageIndex(at: 1088) == 2)
        #expect(c.stageIndex(at: 2271) == 9)
        // Each stage costs the same compute (within rounding of one mini-batch).
        let costs = zip(c.stages, c.batches).map { Double($1) * pow(Double($0.resolution) / 224, 2) }
        #expect(costs.allSatisfy { abs($0 - 100) < 0.5 })
        // In epochs of 100 mini-batches: stage 0 spans epochs 1-6, the run 23 epochs.
        let options = { () -> TrainConfig in var o = TrainConfig.defaults; o.curriculum = .efficienttrain; o.epochs = 10; o.batchSize = 4; return o }()
        let plan = try! TrainingSchedule(options: options, trainCount: 400)
        #expect(plan.batchesPerEpoch == 100 && plan.epochs == 23)
        #expect(Curriculum.side(128, stage: c.stages[0]) == 55 && Curriculum.side(128, stage: c.stages[9]) == 128)
    }

    /// The learning rate follows the compute, so it is continuous across stage boundaries and equals the plain
    /// schedule's value at the same compute.
    @Test func learningRateIsContinuousAcrossStages() {
        let c = Curriculum(epochs: 10, batchesPerEpoch: 100)
        var previous = TrainingSchedule.lrFactor(schedule: .cosine, progress: c.progress(at: 0), warmup: 0.05)
        var largest: Float = 0
        for g in 1 ..< c.totalBatches {
            let f = TrainingSchedule.lrFactor(schedule: .cosine, progress: c.progress(at: g), warmup: 0.05)
            largest = max(largest, abs(f - previous))
            previous = f
        }
        #expect(largest < 0.02, "largest step between mini-batches \(largest)")
        // At the start of stage 7 (full resolution) 60% of the compute is spent: the plain run's factor at 60%.
        #expect(abs(c.progress(at: c.starts[6]) - 0.6) < 1e-3)
        let plain = TrainingSchedule.lrFactor(schedule: .cosine, progress: 0.6, warmup: 0.05)
        #expect(abs(TrainingSchedule.lrFactor(schedule: .cosine, progress: c.progress(at: c.starts[6]), warmup: 0.05) - plain) < 1e-3)
    }

    /// RS2: every example exactly once per 1/r epochs, no repeats within an epoch, a fresh order each round.
    @Test func subsetSamplingSeesEveryExampleOncePerRound() {
        let s = SubsetSampler(count: 10, fraction: 0.5, seed: 3)
        #expect(s.perEpoch == 5)
        for round in 0 ..< 4 {
            let seen = s.epoch(2 * round) + s.epoch(2 * round + 1)
            #expect(seen.sorted() == Array(0 ..< 10), "round \(round): \(seen)")
        }
        #expect(s.epoch(0) + s.epoch(1) != s.epoch(2) + s.epoch(3))
        // r N not dividing N: no repeats within an epoch, and every example once per N examples drawn.
        let t = SubsetSampler(count: 10, fraction: 0.3, seed: 4)
        let drawn = (0 ..< 10).flatMap { t.epoch($0) }
        #expect((0 ..< 10).allSatisfy { Set(t.epoch($0)).count == 3 })
        #expect(Set(drawn.prefix(9)).count == 9)
        let options = { () -> TrainConfig in var o = TrainConfig.defaults; o.subsetFraction = 0.5; o.epochs = 6; o.batchSize = 2; return o }()
        let plan = try! TrainingSchedule(options: options, trainCount: 10)
        #expect(plan.batchesPerEpoch == 3 && plan.totalBatches == 18)   // the schedule counts the reduced epochs
    }
}
