import ArgumentParser
import Foundation
import PatchGD
import SlideIO
import Stain

/// `gigapatch-bench stain`: what stain normalisation and augmentation add per patch, against the conversion every
/// read does anyway (bytes to normalised float planes), on patches of a real slide held in memory (no decoding).
struct StainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stain",
        abstract: "Microseconds per patch of Macenko, Reinhard and the he augmentation preset on a slide's patches; one JSON line.")

    @Option(help: "Slide to take patches from (level 0, a grid from the top left).") var slide: String
    @Option(help: "Patch side in pixels.") var patch: Int = 64
    @Option(help: "Patches timed.") var count: Int = 1024
    @Option(help: "Timed passes over the patches (the fastest counts).") var repeats: Int = 5

    func run() throws {
        let opened = try Slide(path: slide)
        let n = min(opened.dimensions.width, opened.dimensions.height) / patch
        guard n > 0 else { throw ValidationError("\(slide) is smaller than one \(patch) px patch") }
        let p = patch
        var patches: [[UInt8]] = []
        for i in 0 ..< min(count, n * n) {
            patches.append(try opened.readRegion(SlideRegion(level0X: i % n * p, level0Y: i / n * p, level: 0, width: p, height: p)).pixels)
        }
        // Targets fitted on all the patches together (as gigapatch-stain fit pools a dataset sample).
        let pooled = patches.flatMap { $0 }
        let stains = try pooled.withUnsafeBufferPointer { try Macenko.fit(rgb: $0).get() }
        let statistics = try pooled.withUnsafeBufferPointer { try Reinhard.statistics(rgb: $0).get() }
        let macenko = StainNormalizer(StainTarget(macenko: stains)), reinhard = StainNormalizer(StainTarget(reinhard: statistics))
        let he = AugmentationPreset.he.settings, basic = AugmentationPreset.basic.settings
        var out = [Float](repeating: 0, count: 3 * p * p)
        /// Fastest of `repeats` passes, in microseconds per patch.
        func time(_ body: (Int) -> Void) -> Double {
            var best = Double.infinity
            for _ in 0 ..< repeats {
                let start = Date()
                for i in patches.indices { body(i) }
                best = min(best, Date().timeIntervalSince(start) / Double(patches.count) * 1e6)
            }
            return best
        }
        let convert = time { i in out.withUnsafeMutableBufferPointer { Normalization.imagenet.write(patches[i], side: p, augmentation: nil, into: $0.baseAddress!) } }
        let basicAug = time { i in out.withUnsafeMutableBufferPointer { Normalization.imagenet.write(patches[i], side: p, augmentation: basic.draw(seed: UInt64(i)), into: $0.baseAddress!) } }
        let heAug = time { i in out.withUnsafeMutableBufferPointer { Normalization.imagenet.write(patches[i], side: p, augmentation: he.draw(seed: UInt64(i)), into: $0.baseAddress!) } }
        let macenkoTime = time { i in var copy = patches[i]; macenko.apply(&copy) }
        let reinhardTime = time { i in var copy = patches[i]; reinhard.apply(&copy) }
        let line: [String: Any] = ["bench": "stain", "patch": p, "patches": patches.count, "convert_us": convert, "basic_augment_us": basicAug,
                                   "he_augment_us": heAug, "macenko_us": macenkoTime, "reinhard_us": reinhardTime,
                                   "macenko_left_unchanged": macenko.counts.unchanged / repeats, "reinhard_left_unchanged": reinhard.counts.unchanged / repeats]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
