import ArgumentParser
import Foundation
import SlideIO
import Seeded
import TestSupport

/// `gigapatch-synthetic`: writes a synthetic pyramidal slide (tissue-like blobs on white) for demos, tests and benchmarks.
@main
struct SyntheticTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-synthetic",
        abstract: "Write synthetic pyramidal TIFF slides for demos, tests and benchmarks.",
        subcommands: [Synthetic.self, PandaSet.self], defaultSubcommand: Synthetic.self)
}

/// `gigapatch-synthetic panda-set`: a miniature of PANDA's training data (slides and train.csv in PANDA's exact columns).
struct PandaSet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "panda-set",
        abstract: "Write a miniature PANDA: OUT/train_images/<image_id>.tiff (PANDA's layout) and OUT/train.csv (image_id,data_provider,isup_grade,gleason_score).",
        discussion: "ISUP grades cycle 0-5 over the slides, Gleason scores match them (radboud's grade-0 slides say 'negative', as in PANDA), providers alternate karolinska/radboud. The tissue is random blobs: the set exercises the pipeline, it does not teach grading.")

    @Option(help: "Output folder.") var out: String
    @Option(help: "Number of slides.") var count: Int = 12
    @Option(help: "Level-0 side in pixels.") var size: Int = 4096
    @Option(help: "Random seed for the tissue.") var seed: UInt64 = 0

    func run() throws {
        let images = (out as NSString).appendingPathComponent("train_images")
        try FileManager.default.createDirectory(atPath: images, withIntermediateDirectories: true)
        let gleason = ["0+0", "3+3", "3+4", "4+3", "4+4", "4+5"]
        var rows = ["image_id,data_provider,isup_grade,gleason_score"]
        for i in 0 ..< count {
            var generator = SplitMix64(seed: seed &+ UInt64(i))
            let id = String(format: "%016llx", generator.next()).prefix(12) + String(format: "%04d", i)
            let grade = i % 6, provider = i % 2 == 0 ? "karolinska" : "radboud"
            let score = grade == 0 && provider == "radboud" ? "negative" : gleason[grade]
            let blobs = SyntheticSlide.randomBlobs(width: size, height: size, count: 3, seed: seed &+ UInt64(i))
            try SyntheticSlide.panda(width: size, height: size, blobs: blobs).write(to: (images as NSString).appendingPathComponent("\(id).tiff"))
            rows.append("\(id),\(provider),\(grade),\(score)")
        }
        try (rows.joined(separator: "\n") + "\n").write(toFile: (out as NSString).appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        print("wrote \(count) PANDA-shaped slides to \(images) and \(out)/train.csv")
    }
}

/// `gigapatch-synthetic [slide]`: one synthetic slide.
struct Synthetic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "slide",
        abstract: "Write a synthetic pyramidal TIFF slide: seeded tissue-like blobs on a white background.",
        discussion: "OpenSlide opens the result as generic-tiff. The panda preset matches the PANDA slides' layout: 3 levels at downsample 1/4/16, JPEG tiles, mpp 0.486 in the resolution tags.")

    enum Preset: String, ExpressibleByArgument, CaseIterable {
        case panda, generic
    }

    @Option(help: "Layout preset: panda (3 levels, 1/4/16, JPEG, mpp 0.486) or generic (downsample 2, deflate).")
    var preset: Preset = .generic

    @Option(help: "Level-0 width in pixels.") var width: Int = 4096
    @Option(help: "Level-0 height in pixels.") var height: Int = 4096
    @Option(help: "Number of tissue blobs.") var blobs: Int = 6
    @Option(help: "Random seed for blob placement.") var seed: UInt64 = 0
    @Option(help: "Microns per pixel written to the resolution tags (default: 0.486 for panda, none for generic).") var mpp: Double?

    @Argument(help: "Output .tiff path (written atomically).") var output: String

    func validate() throws {
        guard width > 0, height > 0 else { throw ValidationError("--width and --height must be positive") }
        guard blobs >= 0 else { throw ValidationError("--blobs must be 0 or more") }
    }

    func run() throws {
        let layout = SyntheticSlide.randomBlobs(width: width, height: height, count: blobs, seed: seed)
        var slide: SyntheticSlide
        switch preset {
        case .panda: slide = .panda(width: width, height: height, blobs: layout, mpp: mpp ?? 0.486)
        case .generic:
            slide = SyntheticSlide(width: width, height: height, blobs: layout)
            slide.options.micronsPerPixel = mpp
        }
        let start = Date()
        try slide.write(to: output)
        print("wrote \(output): \(width) x \(height), \(blobs) blobs, \(preset.rawValue) layout, \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
    }
}
