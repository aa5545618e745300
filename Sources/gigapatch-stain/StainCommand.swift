import ArgumentParser
import Foundation
import GigapatchCLI
import PatchGD
import SlideIO
import Stain

/// `gigapatch-stain`: fit a stain-normalisation target, and preview what it does.
@main
struct StainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-stain",
        abstract: "Fit a stain-normalisation target (Macenko or Reinhard) and preview it on patches.",
        discussion: """
            fit writes a small JSON target from a slide region, a whole slide (downscaled) or a sample of a dataset's \
            patches; gigapatch-train --stain-normalize TARGET applies it to every patch as it is read, and the \
            checkpoint carries it, so gigapatch-predict applies the same. preview shows patches before and after.
            """,
        subcommands: [Fit.self, Preview.self])
}

/// Where the pixels come from: one of --slide (with --region or not) or --db.
struct SourceOptions: ParsableArguments {
    @Option(help: "A slide or tiled TIFF (whole slide downscaled to 2048 px unless --region is given).") var slide: String?
    @Option(help: "Level-0 region of --slide as x,y,width,height.") var region: String?
    @Option(help: "A reference picture (PNG or JPEG), such as a patch exported from a viewer.") var image: String?
    @Option(help: "Patch index: sample the dataset's patches through it.") var db: String?
    @Option(help: "Dataset in the index (default: the only one).") var dataset: String?
    @Option(help: "Tiling id (default: the only one).") var tiling: Int64?
    @Option(help: "Only slides of this split (e.g. train; default: all).") var split: String?
    @Option(help: "Patches sampled from the dataset.") var sample: Int = 256
    @Option(help: "Random seed of the sample.") var seed: UInt64 = 0

    func validate() throws {
        guard [slide, image, db].compactMap({ $0 }).count == 1 else { throw ValidationError("give one of --slide FILE, --image PICTURE or --db INDEX") }
        guard region == nil || slide != nil else { throw ValidationError("--region needs --slide") }
        guard sample > 0 else { throw ValidationError("--sample must be positive, not \(sample)") }
        if let region { _ = try parsedRegion(region) }
    }

    func parsedRegion(_ text: String) throws -> SlideRegion {
        let parts = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 4, parts[2] > 0, parts[3] > 0, parts[2] * parts[3] <= 1 << 26 else {
            throw ValidationError("--region takes x,y,width,height at level 0 (at most 64 Mpixel), not '\(text)'")
        }
        return SlideRegion(level0X: parts[0], level0Y: parts[1], level: 0, width: parts[2], height: parts[3])
    }

    func source(sample count: Int? = nil) throws -> StainSource {
        if let slide { return .slide(path: slide, region: try region.map(parsedRegion)) }
        if let image { return .image(path: image) }
        return .dataset(db: db!, dataset: dataset, tiling: tiling, split: split, sample: count ?? sample, seed: seed)
    }
}

/// The methods as command-line choices.
enum MethodChoice: String, CaseIterable, ExpressibleByArgument {
    case macenko, reinhard
    var method: StainTarget.Method { self == .macenko ? .macenko : .reinhard }
}

func fail(_ error: Error) -> ExitCode {
    FileHandle.standardError.write(Data("gigapatch-stain: \(error)\n".utf8))
    return ExitCode(1)
}

struct Fit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fit a target from a reference and write it as JSON.")
    @OptionGroup var source: SourceOptions
    @Option(help: "macenko or reinhard.") var method: MethodChoice = .macenko
    @Option(help: "Target file to write (JSON).") var out: String

    func run() throws {
        do {
            let progress = ProgressReporter(label: "reading", unit: "patches")
            let target = try StainStage.fit(method.method, source: try source.source()) { progress.update(done: $0, total: $1) }
            try target.write(to: out)
            print("\(target.summary) from \(target.tissuePixels ?? 0) tissue pixels -> \(out)")
        } catch { throw fail(error) }
    }
}

struct Preview: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a picture of patches before (top) and after (bottom) normalisation.")
    @OptionGroup var source: SourceOptions
    @Option(help: "Target written by gigapatch-stain fit.") var target: String
    @Option(help: "Picture to write (.jpg or .jpeg: JPEG; otherwise PNG).") var out: String
    @Option(help: "Patches shown (with --db).") var count: Int = 6
    @Option(help: "Side of each shown patch in pixels.") var tile: Int = 192

    func run() throws {
        do {
            let target = try StainTarget.load(path: target)
            let images = try StainStage.images(try source.source(sample: count))
            let (picture, unchanged) = StainStage.preview(images, target: target, tile: max(16, min(1024, tile)))
            try ImageFile.write(picture, to: out)
            print("\(images.count) patch\(images.count == 1 ? "" : "es") before and after \(target.method.rawValue) -> \(out)"
                  + (unchanged > 0 ? " (\(unchanged) left as they were: too little tissue or one stain)" : ""))
        } catch { throw fail(error) }
    }
}
