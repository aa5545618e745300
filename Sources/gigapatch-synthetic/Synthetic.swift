import ArgumentParser
import Foundation
import SlideIO
import TestSupport

/// `gigapatch-synthetic`: writes a synthetic pyramidal slide (tissue-like blobs on white) for demos, tests and benchmarks.
@main
struct Synthetic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-synthetic",
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
