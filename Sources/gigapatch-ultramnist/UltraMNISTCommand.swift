import ArgumentParser
import Foundation
import GigapatchCLI
import UltraMNIST

/// `gigapatch-ultramnist`: generates the UltraMNIST benchmark as pyramidal TIFFs plus a manifest.
@main
struct UltraMNISTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-ultramnist",
        abstract: "Generate UltraMNIST (3-5 MNIST digits of very different sizes; label = their sum) as pyramidal TIFFs.",
        discussion: """
            Writes OUT/images/<id>.tiff (grayscale, tiled, pyramidal; OpenSlide opens them) and OUT/manifest.csv \
            (slide,label,split,digits,scales,boxes,mnist_indices), ready for `gigapatch-ingest --tissue none`.
            Presets: kaggle (4000 px, 28 classes, scales 1-75, noise) and patchgd (512 px, 10 classes, scales 1-9, \
            no noise). Every preset value can be overridden. The same seed and flags give byte-identical files; \
            an interrupted run resumes where it stopped.
            """)

    @Option(help: "Folder with the MNIST IDX files (gzip or not). See README.md for where to get MNIST.")
    var mnist: String

    @Option(name: .shortAndLong, help: "Output folder.")
    var out: String

    @Option(help: "Recipe preset: kaggle or patchgd.")
    var preset: String = "patchgd"

    @Option(help: "Image side in pixels.") var size: Int?
    @Option(help: "Digits per image, e.g. 3...5.") var digits: String?
    @Option(help: "Number of classes (labels are digit sums 0 ..< classes).") var classes: Int?
    @Option(help: "Digit scale factors, e.g. 1...75 (digit side = 28 x factor); weights stay V-shaped.") var scale: String?
    @Flag(inversion: .prefixedNo, help: "Background noise (checkerboard, affine, circles, triangles).") var noise: Bool?

    @Option(help: "Training images per class (or in total with --total).") var train: Int = 10
    @Option(help: "Validation images per class (or in total with --total).") var val: Int = 2
    @Option(help: "Test images per class (or in total with --total).") var test: Int = 2
    @Flag(help: "Treat --train/--val/--test as totals instead of per-class counts.") var total = false

    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "JPEG quality; default is lossless deflate.") var jpegQuality: Int?
    @Option(help: "Images generated in parallel (default: number of cores).") var workers: Int = ProcessInfo.processInfo.activeProcessorCount

    func recipe() throws -> UltraMNISTRecipe {
        guard var recipe = UltraMNISTRecipe.presets[preset] else {
            throw ValidationError("unknown preset '\(preset)'; use kaggle or patchgd")
        }
        if let size { recipe.size = size }
        if let classes { recipe.classes = classes }
        if let noise { recipe.noise = noise }
        if let digits {
            let (lo, hi) = try Self.range(digits, name: "--digits")
            recipe.minDigits = lo
            recipe.maxDigits = hi
        }
        if let scale {
            let (lo, hi) = try Self.range(scale, name: "--scale")
            recipe.minScale = lo
            recipe.maxScale = hi
            let count = hi - lo + 1
            recipe.scaleWeights = UltraMNISTRecipe.vShape(descendingFrom: (count + 1) / 2 + (count % 2 == 0 ? 1 : 0), count: count)
        }
        if let problem = recipe.problem() { throw ValidationError(problem) }
        return recipe
    }

    static func range(_ text: String, name: String) throws -> (Int, Int) {
        let parts = text.components(separatedBy: "...")
        if parts.count == 1, let v = Int(parts[0]) { return (v, v) }
        guard parts.count == 2, let lo = Int(parts[0]), let hi = Int(parts[1]), lo <= hi else {
            throw ValidationError("\(name) takes a range like 3...5, got '\(text)'")
        }
        return (lo, hi)
    }

    func run() throws {
        let recipe = try recipe()
        guard train >= 0, val >= 0, test >= 0, train + val + test > 0 else { throw ValidationError("--train, --val, --test must be 0 or more, not all 0") }
        let job = UltraMNISTJob(recipe: recipe, counts: SplitCounts(train: train, val: val, test: test, totals: total),
                                seed: seed, jpegQuality: jpegQuality)
        let reporter = ProgressReporter(label: "generating", unit: "images")
        let start = Date()
        do {
            try UltraMNISTGenerator.run(job: job, mnistDirectory: mnist, outDirectory: out, workers: max(1, workers)) { p in
                reporter.update(done: p.done, total: p.total, extra: p.skipped > 0 ? "(\(p.skipped) already there)" : "")
            }
        } catch {
            FileHandle.standardError.write(Data("gigapatch-ultramnist: \(error)\n".utf8))
            throw ExitCode(1)
        }
        print("wrote \(out)/manifest.csv and \(out)/images/ in \(ProgressReporter.duration(Date().timeIntervalSince(start)))")
    }
}
