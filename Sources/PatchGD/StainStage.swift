import Foundation
import PatchIndex
import Seeded
import SlideIO
import Stain

/// Where `gigapatch-stain` takes its pixels: a region of a slide (or the whole slide, downscaled), or a sample of a
/// dataset's tissue patches read through the patch index.
public enum StainSource: Sendable {
    /// A slide (any file OpenSlide opens, a tiled TIFF patch included): `region` at level 0, or the whole slide
    /// downscaled to at most 2048 px when nil.
    case slide(path: String, region: SlideRegion?)
    /// A picture (PNG or JPEG), such as a reference patch exported from a viewer.
    case image(path: String)
    /// `sample` patches drawn with `seed` from a dataset's slides (of `split`, or all), as training reads them.
    case dataset(db: String, dataset: String?, tiling: Int64?, split: String?, sample: Int, seed: UInt64)

    var description: String {
        switch self {
        case .slide(let path, let region):
            return region.map { "\(path) region \($0.level0X),\($0.level0Y) \($0.width)x\($0.height)" } ?? "\(path) (whole slide, downscaled)"
        case .image(let path): return path
        case .dataset(let db, let dataset, _, let split, let sample, let seed):
            return "\(sample) patches of dataset \(dataset ?? "(the only one)")\(split.map { " split \($0)" } ?? "") in \(db), seed \(seed)"
        }
    }
}

/// `gigapatch-stain`: fits stain targets and shows what they do.
public enum StainStage {
    /// Most pixels pooled for a Macenko fit over a dataset (12 bytes of optical density each): larger samples are
    /// thinned evenly, so memory stays bounded whatever the sample.
    public static let poolLimit = 2_000_000

    /// The pixels of the source, as RGB squares or regions (each with its width).
    public static func images(_ source: StainSource, progress: ((Int, Int) -> Void)? = nil) throws -> [(pixels: [UInt8], width: Int)] {
        switch source {
        case .slide(let path, let region):
            let slide: Slide
            do { slide = try Slide(path: path) } catch { throw TrainingError("\(error)", kind: .unreadable) }
            if let region {
                guard region.level0X >= 0, region.level0Y >= 0, region.level0X + region.width <= slide.dimensions.width,
                      region.level0Y + region.height <= slide.dimensions.height else {
                    throw TrainingError("\(path): region \(region.level0X),\(region.level0Y) \(region.width)x\(region.height) is outside the slide (\(slide.dimensions.width) x \(slide.dimensions.height) at level 0)", kind: .badOption)
                }
                do { return [(try slide.readRegion(region).pixels, region.width)] } catch { throw TrainingError("\(error)", kind: .unreadable) }
            }
            do {
                let thumb = try slide.thumbnail(maxSize: 2048)
                return [(thumb.pixels, thumb.width)]
            } catch { throw TrainingError("\(error)", kind: .unreadable) }
        case .image(let path):
            do {
                let picture = try ImageFile.read(path)
                return [(picture.pixels, picture.width)]
            } catch { throw TrainingError("\(error)", kind: .unreadable) }
        case .dataset(let db, let datasetName, let tiling, let split, let sample, let seed):
            let index = try PatchIndex.existing(at: db)
            let data = try PatchDataset.load(index: index, dataset: datasetName, tilingID: tiling, maxGrid: 4096)
            let images = data.images.filter { split == nil || $0.split == split }
            let cells = images.enumerated().flatMap { i, image in image.locations.indices.map { (i, $0) } }
            guard !cells.isEmpty else {
                throw TrainingError("\(db): dataset '\(data.datasetName)' has no patches\(split.map { " in split '\($0)'" } ?? "") to fit from; ingest slides first or give another --split", kind: .badData)
            }
            var rng = SplitMix64(seed: seed)
            var chosen = cells
            for i in stride(from: chosen.count - 1, to: 0, by: -1) { chosen.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
            chosen = Array(chosen.prefix(sample))
            let reader = PatchReader(patchSize: data.tiling.patchSize, normalization: .imagenet, cacheCapacity: 0)
            var out: [(pixels: [UInt8], width: Int)] = []
            for (k, (i, c)) in chosen.enumerated() {
                do { out.append((try reader.rgb(images[i].locations[c]), data.tiling.patchSize)) } catch {
                    throw TrainingError("\(images[i].path): patch at \(images[i].locations[c].region.level0X),\(images[i].locations[c].region.level0Y) cannot be read (\(error))", kind: .unreadable)
                }
                progress?(k + 1, chosen.count)
            }
            return out
        }
    }

    /// Fits a target of `method` to the source's pixels (pooled over all its images).
    /// - Throws: `TrainingError` when the pixels hold too little tissue or only one stain.
    public static func fit(_ method: StainTarget.Method, source: StainSource, progress: ((Int, Int) -> Void)? = nil) throws -> StainTarget {
        let images = try images(source, progress: progress)
        let what = source.description
        switch method {
        case .reinhard:
            var accumulator = Reinhard.Accumulator()
            for image in images { image.pixels.withUnsafeBufferPointer { accumulator.add(rgb: $0) } }
            switch accumulator.statistics() {
            case .success(let stats): return StainTarget(reinhard: stats, fittedFrom: what, tissuePixels: accumulator.count)
            case .failure(let failure): throw TrainingError("\(what): \(describe(failure)); choose a region or sample with more tissue", kind: .badData)
            }
        case .macenko:
            // Pool every image's pixels, thinned evenly past the limit.
            let total = images.reduce(0) { $0 + $1.pixels.count / 3 }
            let step = max(1, (total + poolLimit - 1) / poolLimit)
            var pooled: [UInt8] = []
            pooled.reserveCapacity(3 * min(total, poolLimit + images.count))
            var k = 0
            for image in images {
                for p in 0 ..< image.pixels.count / 3 {
                    if k % step == 0 { pooled += image.pixels[3 * p ..< 3 * p + 3] }
                    k += 1
                }
            }
            let parameters = Macenko.Parameters()
            switch pooled.withUnsafeBufferPointer({ Macenko.fitCountingTissue(rgb: $0, parameters: parameters) }) {
            case .success(let fit):
                return StainTarget(macenko: fit.stains, parameters: parameters, fittedFrom: what, tissuePixels: fit.tissuePixels)
            case .failure(let failure): throw TrainingError("\(what): \(describe(failure)); choose a region or sample with more tissue and both stains", kind: .badData)
            }
        }
    }

    static func describe(_ failure: Macenko.Failure) -> String {
        switch failure {
        case .tooLittleTissue(let n): return "only \(n) tissue pixels"
        case .degenerate: return "one stain only (the two stain directions coincide)"
        }
    }

    static func describe(_ failure: Reinhard.Failure) -> String {
        switch failure {
        case .tooLittleTissue(let n): return "only \(n) tissue pixels"
        case .flat: return "no colour spread in the tissue"
        }
    }

    /// A before/after picture: each image as it is (top row) and normalised to `target` (bottom row), each square
    /// scaled to `tile` px, 4 px white gaps. Also returns how many images were left as they were.
    public static func preview(_ images: [(pixels: [UInt8], width: Int)], target: StainTarget, tile: Int = 192) -> (picture: Raster, unchanged: Int) {
        let gap = 4, n = images.count
        var picture = Raster(width: n * tile + (n + 1) * gap, height: 2 * tile + 3 * gap, channels: 3)
        let normalizer = StainNormalizer(target)
        for (i, image) in images.enumerated() {
            let height = image.pixels.count / 3 / image.width
            let before = Raster(width: image.width, height: height, channels: 3, pixels: image.pixels)
            var after = before
            normalizer.apply(&after.pixels)
            for (row, raster) in [before, after].enumerated() {
                let scaled = raster.width > tile ? Resample.area(raster, width: tile, height: tile) : Resample.bilinear(raster, width: tile, height: tile)
                let x0 = gap + i * (tile + gap), y0 = gap + row * (tile + gap)
                for y in 0 ..< tile {
                    let d = 3 * ((y0 + y) * picture.width + x0), s = 3 * y * tile
                    picture.pixels.replaceSubrange(d ..< d + 3 * tile, with: scaled.pixels[s ..< s + 3 * tile])
                }
            }
        }
        return (picture, normalizer.counts.unchanged)
    }
}
