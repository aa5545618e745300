import Cluster
import Foundation
import NN
import SlideIO
import Stain

/// Where one patch is: its slide and the square region read (level-0 origin, level, side at that level).
public struct PatchLocation: Sendable, Hashable {
    public var path: String
    public var region: SlideRegion

    public init(path: String, level0X: Int, level0Y: Int, level: Int, readSize: Int) {
        self.path = path
        region = SlideRegion(level0X: level0X, level0Y: level0Y, level: level, width: readSize, height: readSize)
    }

    /// Side read at the level (resampled to the patch size when it differs).
    public var readSize: Int { region.width }
}

/// Per-channel normalisation applied to RGB patches scaled to [0, 1]: (x - mean) / std.
public struct Normalization: Sendable, Equatable, Codable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        self.mean = mean
        self.std = std
    }

    /// ImageNet statistics (torchvision's pretrained backbones).
    public static let imagenet = Normalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
    /// MNIST's statistics (gray replicated to RGB), for UltraMNIST.
    public static let mnist = Normalization(mean: [0.1307, 0.1307, 0.1307], std: [0.3081, 0.3081, 0.3081])
    /// Presets by name.
    public static let presets: [String: Normalization] = ["imagenet": imagenet, "mnist": mnist]

    /// An (N, 3, side, side) tensor of N decoded squares fetched in parallel by `rgb(i)`, augmented and normalised.
    /// - Throws: the first error any fetch threw.
    func tensor(count: Int, side p: Int, augmentations: [PatchAugmentation]?, rgb: @escaping (Int) throws -> [UInt8]) throws -> Tensor {
        let out = Tensor(uninitialized: [count, 3, p, p])
        let failures = FirstError(), po = out.pointer
        Parallel.forRange(count, grain: 1) { r in
            for i in r {
                do { write(try rgb(i), side: p, augmentation: augmentations?[i], into: po + i * 3 * p * p) } catch { failures.record(error) }
            }
        }
        if let error = failures.error { throw error }
        return out
    }

    /// Writes a square of interleaved RGB bytes (side x side), augmented when asked, as 3 normalised planes at `out`.
    public func write(_ rgb: [UInt8], side p: Int, augmentation: PatchAugmentation?, into out: UnsafeMutablePointer<Float>) {
        rgb.withUnsafeBufferPointer { (augmentation ?? PatchAugmentation()).apply(rgb: $0, p: p, into: out) }
        for c in 0 ..< 3 {
            let scale = 1 / std[c], shift = -mean[c] / std[c], dst = out + c * p * p
            for j in 0 ..< p * p { dst[j] = dst[j] * scale + shift }
        }
    }
}

/// Reads patches lazily from slide files, never a whole image: each patch is one OpenSlide read at its level,
/// resampled to the patch size when the read size differs, normalised into an (N, 3, P, P) tensor.
///
/// Decoded patches (RGB bytes at the patch size) stay in a bounded least-recently-used cache, and `prefetch`
/// decodes the next group on a background thread while the current one computes. Open slides are shared by the
/// reader threads (OpenSlide reads are thread-safe) and bounded: OpenSlide 3.4 gives every handle its own tile cache,
/// so a training set of thousands of slides kept open held about 0.3 MB each for small TIFFs (1.5 GB over 4300
/// UltraMNIST images) and more for whole slides. The least recently used slide is closed past `openSlideLimit`; a read
/// still using it keeps it alive until that read ends.
public final class PatchReader: @unchecked Sendable {
    public let patchSize: Int
    public let normalization: Normalization
    /// Patches the cache may hold (each 3 * patchSize^2 bytes).
    public let cacheCapacity: Int
    private let lock = NSLock()
    private var slides: [String: (slide: Slide, used: Int)] = [:]
    /// Slides kept open at once (at least 1).
    public let openSlideLimit: Int
    private var opened = 0
    private var cache: [PatchLocation: [UInt8]] = [:]
    private var recency: [PatchLocation: Int] = [:]
    private var clock = 0
    private let prefetchQueue = DispatchQueue(label: "gigapatch.patch-prefetch")
    private var readCount = 0

    /// OpenSlide reads performed (cache misses), for tests and progress.
    public var reads: Int { lock.withLock { readCount } }
    /// When set, a patch that cannot be read (a corrupt tile) is recorded here and read as white background instead
    /// of failing the whole read; when nil, the read throws (prediction skips the slide).
    public var badPatches: BadPatchLog?
    /// Stain normalisation applied to each patch as it is decoded, before caching (nil: none).
    public let stain: StainNormalizer?

    public init(patchSize: Int, normalization: Normalization, cacheCapacity: Int = 4096, stain: StainNormalizer? = nil,
                openSlideLimit: Int = 64) {
        self.patchSize = patchSize
        self.normalization = normalization
        self.cacheCapacity = max(0, cacheCapacity)
        self.stain = stain
        self.openSlideLimit = max(1, openSlideLimit)
    }

    /// The patches at `locations` as a normalised (N, 3, P, P) tensor, read in parallel where not cached.
    ///
    /// - Parameter augmentations: one per location (training), applied to the decoded patch before normalisation.
    /// - Throws: `SlideError` naming the slide when one cannot be opened or read.
    public func read(_ locations: [PatchLocation], augmentations: [PatchAugmentation]? = nil) throws -> Tensor {
        precondition(augmentations == nil || augmentations!.count == locations.count, "one augmentation per patch")
        let log = badPatches, white = [UInt8](repeating: 255, count: 3 * patchSize * patchSize)
        return try normalization.tensor(count: locations.count, side: patchSize, augmentations: augmentations) { i in
            do { return try self.rgb(locations[i]) } catch {
                guard let log else { throw error }
                log.record(locations[i], error: error)
                return white
            }
        }
    }

    /// Starts decoding `locations` into the cache in the background (the next inner iteration's patches).
    public func prefetch(_ locations: [PatchLocation]) {
        prefetchQueue.async { for location in locations { _ = try? self.rgb(location) } }
    }

    /// Waits until earlier prefetches have finished.
    public func drainPrefetch() { prefetchQueue.sync {} }

    /// RGB bytes of a patch at the patch size, from the cache or one OpenSlide read.
    func rgb(_ location: PatchLocation) throws -> [UInt8] {
        if let hit: [UInt8] = lock.withLock({
            guard let bytes = cache[location] else { return nil }
            clock += 1
            recency[location] = clock
            return bytes
        }) { return hit }
        let slide = try open(location.path)
        var raster = try slide.readRegion(location.region)
        if location.readSize != patchSize {
            raster = location.readSize > patchSize ? Resample.area(raster, width: patchSize, height: patchSize)
                                                   : Resample.bilinear(raster, width: patchSize, height: patchSize)
        }
        stain?.apply(&raster.pixels)
        lock.withLock {
            readCount += 1
            guard cacheCapacity > 0 else { return }
            // Evicting scans for the oldest entry: a few microseconds against a millisecond-scale tile decode.
            if cache.count >= cacheCapacity, let oldest = recency.min(by: { $0.value < $1.value })?.key {
                cache[oldest] = nil
                recency[oldest] = nil
            }
            clock += 1
            cache[location] = raster.pixels
            recency[location] = clock
        }
        return raster.pixels
    }

    private func open(_ path: String) throws -> Slide {
        if let slide: Slide = lock.withLock({
            guard let entry = slides[path] else { return nil }
            clock += 1
            slides[path]!.used = clock
            return entry.slide
        }) { return slide }
        let slide = try Slide(path: path)
        return lock.withLock {
            clock += 1
            if let existing = slides[path] {
                slides[path]!.used = clock
                return existing.slide
            }
            // Closing scans for the least recently used: a few microseconds against opening a slide.
            if slides.count >= openSlideLimit, let oldest = slides.min(by: { $0.value.used < $1.value.used })?.key {
                slides[oldest] = nil
            }
            slides[path] = (slide, clock)
            opened += 1
            return slide
        }
    }

    /// Slides open now, and slides opened so far (a slide closed and read again counts twice), for tests.
    public var openSlides: (now: Int, opened: Int) { lock.withLock { (slides.count, opened) } }

    /// Number of decoded patches held.
    public var cachedCount: Int { lock.withLock { cache.count } }
}

/// Patches that could not be read during a run, each once, with the error: counted in the epoch metrics, written to
/// `RUNDIR/bad-patches.csv`, and a run that loses too many stops (`--max-bad-patches`).
public final class BadPatchLog: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [PatchLocation: String] = [:]

    public init() {}

    public var count: Int { lock.withLock { errors.count } }

    func record(_ location: PatchLocation, error: Error) {
        let text = String(describing: error).replacingOccurrences(of: "\n", with: " ")
        lock.withLock { if errors[location] == nil { errors[location] = text } }
    }

    /// One entry as sent between ranks.
    struct Entry: Codable {
        var path: String
        var x: Int, y: Int, level: Int, size: Int
        var error: String
    }

    /// The entries as bytes, for another rank's `merge`.
    func encoded() throws -> [UInt8] {
        let entries = lock.withLock { errors.map { Entry(path: $0.key.path, x: $0.key.region.level0X, y: $0.key.region.level0Y, level: $0.key.region.level, size: $0.key.readSize, error: $0.value) } }
        return Array(try JSONEncoder().encode(entries))
    }

    /// Adds another log's `encoded` entries; a patch recorded by both keeps this log's error.
    func merge(encoded bytes: [UInt8]) throws {
        let entries = try JSONDecoder().decode([Entry].self, from: Data(bytes))
        lock.withLock {
            for e in entries {
                let location = PatchLocation(path: e.path, level0X: e.x, level0Y: e.y, level: e.level, readSize: e.size)
                if errors[location] == nil { errors[location] = e.error }
            }
        }
    }

    /// path, level0_x, level0_y, level, read_size, error, sorted.
    public var csv: String {
        let rows = lock.withLock { errors.sorted { ($0.key.path, $0.key.region.level0Y, $0.key.region.level0X) < ($1.key.path, $1.key.region.level0Y, $1.key.region.level0X) } }
        func field(_ s: String) -> String { s.contains(where: { ",\"\n".contains($0) }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        return (["path,level0_x,level0_y,level,read_size,error"] + rows.map { location, error in
            [field(location.path), String(location.region.level0X), String(location.region.level0Y), String(location.region.level),
             String(location.region.width), field(error)].joined(separator: ",")
        }).joined(separator: "\n") + "\n"
    }
}
