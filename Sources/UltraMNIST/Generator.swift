import Basics
import Foundation
import Manifests
import Seeded
import SlideIO

/// How many images to make per split, and whether counts are per class or totals.
public struct SplitCounts: Sendable, Equatable, Codable {
    public var train: Int
    public var val: Int
    public var test: Int
    /// When true the counts are totals (classes take turns); otherwise images per class.
    public var totals: Bool

    public init(train: Int, val: Int, test: Int, totals: Bool = false) {
        self.train = train
        self.val = val
        self.test = test
        self.totals = totals
    }
}

/// Everything a generation run depends on; stored beside the output so a re-run can tell whether files are reusable.
public struct UltraMNISTJob: Sendable, Equatable, Codable {
    public var recipe: UltraMNISTRecipe
    public var counts: SplitCounts
    public var seed: UInt64
    public var jpegQuality: Int?
    public var format = 1

    public init(recipe: UltraMNISTRecipe, counts: SplitCounts, seed: UInt64, jpegQuality: Int? = nil) {
        self.recipe = recipe
        self.counts = counts
        self.seed = seed
        self.jpegQuality = jpegQuality
    }
}

/// An error of the UltraMNIST stage, naming the file or setting at fault.
public struct UltraMNISTError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The UltraMNIST stage: draws layouts, renders each image tile by tile into a pyramidal TIFF, writes the manifest.
///
/// Images are independent: image `i` of split `s` draws from its own random stream derived from the seed,
/// so the output is byte-identical whatever the number of workers. Training digits come from the MNIST
/// training file; validation digits from the first half of the MNIST test file and test digits from the
/// second half, so no digit image is shared between splits.
public enum UltraMNISTGenerator {
    /// Counts reported to the caller after each image.
    public struct Progress: Sendable {
        public let done: Int
        public let total: Int
        public let skipped: Int
    }

    /// One planned image.
    struct Planned: Sendable {
        let split: String
        let index: Int
        let label: Int
    }

    /// The MNIST pools per split: training file for train; halves of the test file for val and test.
    static func pools(train: MNISTSet, test: MNISTSet) -> [String: [[Int]]] {
        let half = test.count / 2
        let byDigitTest = test.indicesByDigit()
        return ["train": train.indicesByDigit(),
                "val": byDigitTest.map { $0.filter { $0 < half } },
                "test": byDigitTest.map { $0.filter { $0 >= half } }]
    }

    /// The layouts of every image a job makes, in manifest order (no rendering).
    public static func layouts(job: UltraMNISTJob, train: MNISTSet, test: MNISTSet) throws -> [ImageLayout] {
        let pools = pools(train: train, test: test)
        for (split, pool) in pools {
            if let digit = pool.indices.first(where: { pool[$0].isEmpty }) {
                throw UltraMNISTError("the MNIST \(split == "train" ? "training" : "test") file has no image of digit \(digit) for the \(split) split")
            }
        }
        let root = SplitMix64(seed: job.seed)
        return plan(job).map { item in
            var rng = root.derived(splitKey(item.split), UInt64(item.index))
            let generator = LayoutGenerator(recipe: job.recipe, pool: pools[item.split]!)
            return generator.layout(id: String(format: "%@-%06d", item.split, item.index), split: item.split, label: item.label, using: &rng)
        }
    }

    static func splitKey(_ split: String) -> UInt64 { split == "train" ? 1 : split == "val" ? 2 : 3 }

    static func plan(_ job: UltraMNISTJob) -> [Planned] {
        let k = job.recipe.classes
        var items: [Planned] = []
        for (split, n) in [("train", job.counts.train), ("val", job.counts.val), ("test", job.counts.test)] {
            let total = job.counts.totals ? n : n * k
            for i in 0 ..< total { items.append(Planned(split: split, index: i, label: i % k)) }
        }
        return items
    }

    /// Generates the job into `outDirectory`: `images/<id>.tiff` and `manifest.csv`.
    ///
    /// Images already present from an identical earlier job (same `ultramnist.json`) are kept, so an interrupted
    /// run resumes; a different job replaces the folder's manifest and images. Each file appears atomically.
    public static func run(job: UltraMNISTJob, mnistDirectory: String, outDirectory: String, workers: Int,
                           progress: @escaping @Sendable (Progress) -> Void) throws {
        if let problem = job.recipe.problem() { throw UltraMNISTError("invalid UltraMNIST settings: \(problem)") }
        let train = try MNISTSet.load(directory: mnistDirectory, part: .train)
        let test = try MNISTSet.load(directory: mnistDirectory, part: .test)
        let layouts = try layouts(job: job, train: train, test: test)
        let fm = FileManager.default
        let imagesDirectory = "\(outDirectory)/images"
        try fm.createDirectory(atPath: imagesDirectory, withIntermediateDirectories: true)

        // Reuse images only when they were made by this very job.
        let jobPath = "\(outDirectory)/ultramnist.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let jobData = try encoder.encode(job)
        let reusable = (try? Data(contentsOf: URL(fileURLWithPath: jobPath))) == jobData
        if !reusable {
            try? fm.removeItem(atPath: "\(outDirectory)/manifest.csv")
            try atomicWrite(jobData, to: jobPath)
        }

        let options = PyramidTIFFOptions(compression: job.jpegQuality.map { .jpeg(quality: $0) } ?? .deflate, downsamplePerLevel: 2,
                                         imageDescription: "UltraMNIST")
        let renderers = (train: UltraMNISTRenderer(mnist: train), test: UltraMNISTRenderer(mnist: test))
        let state = GenerationState(total: layouts.count)
        let chunks = max(1, min(workers, layouts.count))
        DispatchQueue.concurrentPerform(iterations: chunks) { worker in
            for i in Swift.stride(from: worker, to: layouts.count, by: chunks) {
                if state.failed { return }
                let layout = layouts[i]
                let path = "\(imagesDirectory)/\(layout.id).tiff"
                var skipped = false
                do {
                    if reusable && fm.fileExists(atPath: path) {
                        skipped = true
                    } else {
                        let renderer = layout.split == "train" ? renderers.train : renderers.test
                        try PyramidTIFFWriter.write(to: path, width: layout.size, height: layout.size, channels: 1, options: options) { tile, pixels in
                            renderer.render(layout, x: tile.x, y: tile.y, width: tile.width, height: tile.height,
                                            into: pixels.baseAddress!, stride: tile.tileSize)
                        }
                    }
                } catch {
                    state.fail(error)
                    return
                }
                progress(state.finish(skipped: skipped))
            }
        }
        if let error = state.error { throw error }
        try atomicWrite(Data(manifest(layouts).utf8), to: "\(outDirectory)/manifest.csv")
    }

    /// The manifest in the generic form ingest reads: `slide,label,split` plus the digits, scales, boxes and MNIST indices.
    ///
    /// `slide` is relative to the manifest's folder; `scales` gives 0.5 for a half-size (14 px) digit;
    /// `boxes` is `x,y,w,h` per digit in level-0 pixels, `;`-separated.
    public static func manifest(_ layouts: [ImageLayout]) -> String {
        CSV.format(header: ["slide", "label", "split", "digits", "scales", "boxes", "mnist_indices"], rows: layouts.map { layout in
            ["images/\(layout.id).tiff", String(layout.label), layout.split,
             layout.digits.map { String($0.value) }.joined(separator: ";"),
             layout.digits.map { $0.side == 14 ? "0.5" : String($0.scale) }.joined(separator: ";"),
             layout.digits.map { "\($0.x),\($0.y),\($0.side),\($0.side)" }.joined(separator: ";"),
             layout.digits.map { String($0.mnistIndex) }.joined(separator: ";")]
        })
    }

    static func atomicWrite(_ data: Data, to path: String) throws {
        do { try AtomicFile.write(data, to: path) } catch { throw UltraMNISTError("\(error)") }
    }
}

/// Progress and the first error, shared by the workers.
private final class GenerationState: @unchecked Sendable {
    private let lock = NSLock()
    private var done = 0
    private var skipped = 0
    let total: Int
    private(set) var error: Error?

    init(total: Int) { self.total = total }

    var failed: Bool { lock.withLock { error != nil } }

    func fail(_ error: Error) { lock.withLock { if self.error == nil { self.error = error } } }

    func finish(skipped wasSkipped: Bool) -> UltraMNISTGenerator.Progress {
        lock.withLock {
            done += 1
            if wasSkipped { skipped += 1 }
            return .init(done: done, total: total, skipped: skipped)
        }
    }
}
