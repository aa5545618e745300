import Basics
import Foundation
import PatchIndex
import SlideIO

/// An error of the training or prediction stage: what failed, where, and what to do.
public struct TrainingError: Error, Sendable, CustomStringConvertible, KindedError {
    public let message: String
    /// What kind of failure it is, for callers that act on it (a bad option, a missing file, a diverged run, ...).
    public let kind: ErrorKind
    public init(_ message: String, kind: ErrorKind = .other) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}

/// What to do with a slide whose tissue spans more grid cells than `--max-grid` in a direction.
public enum OversizePolicy: String, Sendable, Codable, CaseIterable {
    /// Keep the central max-grid x max-grid cells of the tissue's bounding box.
    case crop
    /// Use a coarser tiling of the same dataset (same patch size, larger microns per pixel) in which the slide fits;
    /// crop when none does.
    case coarser
}

/// One image as the trainer sees it: its slide, label, split and the patch grid laid over its tissue.
///
/// The grid is the bounding box of the slide's indexed patches (tissue), so margins without tissue cost nothing:
/// Z's cell (r, c) is tiling grid cell (rowOffset + r, colOffset + c), in the same orientation (never transposed).
/// Cells without a patch are absent from `grid.cells` and hold zeros in Z.
public struct TrainingImage: Sendable {
    public var slideID: Int64
    public var key: String
    public var path: String
    public var label: Int?
    public var split: String?
    public var fold: Int?
    public var grid: PatchGrid
    public var rowOffset: Int
    public var colOffset: Int
    /// The tiling the patches come from (differs from the dataset's chosen tiling under `OversizePolicy.coarser`).
    public var tilingID: Int64
    /// Patch location of each cell in `grid.cells`, same order.
    public var locations: [PatchLocation]
    /// Patches left out by the central crop to `--max-grid`.
    public var croppedPatches: Int

    /// Locations of the given cells (row-major indices into the grid).
    public func locations(of cells: [Int]) -> [PatchLocation] {
        cells.map { cell in locations[grid.cells.binarySearch(cell)!] }
    }
}

extension Array where Element == Int {
    /// Index of `value` in a sorted array, or nil.
    func binarySearch(_ value: Int) -> Int? {
        var lo = 0, hi = count
        while lo < hi {
            let mid = (lo + hi) / 2
            if self[mid] < value { lo = mid + 1 } else { hi = mid }
        }
        return lo < count && self[lo] == value ? lo : nil
    }
}

/// The slides of one dataset and tiling, with their patch grids, loaded from the patch index.
public struct PatchDataset: Sendable {
    public var datasetName: String
    public var datasetID: Int64
    public var tiling: TilingInfo
    public var images: [TrainingImage]
    /// Messages about slides left out or cropped (shown to the user once).
    public var notes: [String]

    /// Loads every slide done under the tiling.
    ///
    /// - Parameters:
    ///   - dataset: the dataset's name; nil when the index holds exactly one.
    ///   - tilingID: the tiling's id; nil when the dataset has exactly one.
    ///   - maxGrid: the largest grid side; larger tissue is handled by `oversize`.
    /// - Throws: `TrainingError` naming what is missing and the choices available.
    public static func load(index: PatchIndex, dataset: String?, tilingID: Int64?, scheme: String = "default",
                            maxGrid: Int, oversize: OversizePolicy = .crop) throws -> PatchDataset {
        let names = try index.datasetNames()
        let name: String
        if let dataset {
            guard names.contains(dataset) else {
                throw TrainingError("\(index.path): no dataset '\(dataset)'; the index has \(names.isEmpty ? "none (run gigapatch-ingest)" : names.joined(separator: ", "))")
            }
            name = dataset
        } else {
            guard names.count == 1 else {
                throw TrainingError("\(index.path): \(names.isEmpty ? "no datasets; run gigapatch-ingest first" : "several datasets (\(names.joined(separator: ", "))); choose one with --dataset")")
            }
            name = names[0]
        }
        let datasetID = try index.existingDatasetID(named: name)!
        let tilings = try index.tilings(datasetID: datasetID)
        let tiling: TilingInfo
        if let tilingID {
            guard let t = tilings.first(where: { $0.id == tilingID }) else {
                throw TrainingError("\(index.path): dataset '\(name)' has no tiling \(tilingID); its tilings: \(describe(tilings))")
            }
            tiling = t
        } else {
            guard tilings.count == 1 else {
                throw TrainingError("\(index.path): dataset '\(name)' has \(tilings.isEmpty ? "no tilings; run gigapatch-ingest" : "several tilings (\(describe(tilings))); choose one with --tiling ID")")
            }
            tiling = tilings[0]
        }
        var notes: [String] = []
        let slides = try index.trainingSlides(datasetID: datasetID, tilingID: tiling.id, scheme: scheme)
        guard !slides.isEmpty else {
            throw TrainingError("\(index.path): no slide of dataset '\(name)' is ingested (status done) under tiling \(tiling.id); run gigapatch-ingest")
        }
        let coarser = oversize == .coarser
            ? tilings.filter { $0.id != tiling.id && $0.patchSize == tiling.patchSize }.sorted { ($0.targetMPP ?? Double($0.level ?? 0)) < ($1.targetMPP ?? Double($1.level ?? 0)) }
            : []
        var images: [TrainingImage] = []
        for slide in slides {
            var image = try makeImage(slide, tilingID: tiling.id, index: index, maxGrid: maxGrid)
            if image.croppedPatches > 0, !coarser.isEmpty {
                for alternative in coarser {
                    let candidate = try makeImage(slide, tilingID: alternative.id, index: index, maxGrid: maxGrid)
                    if candidate.croppedPatches == 0, !candidate.grid.cells.isEmpty {
                        notes.append("\(slide.key): tissue spans more than \(maxGrid) cells; using the coarser tiling \(alternative.id)")
                        image = candidate
                        break
                    }
                }
            }
            if image.croppedPatches > 0 {
                notes.append("\(slide.key): tissue spans more than \(maxGrid) cells; kept the \(image.grid.rows)x\(image.grid.cols) window with the most patches (\(image.croppedPatches) patches left out; raise --max-grid to keep them)")
            }
            images.append(image)
        }
        return PatchDataset(datasetName: name, datasetID: datasetID, tiling: tiling, images: images, notes: notes)
    }

    /// The origin of the window of at most `side` x `side` cells over a `rows` x `cols` box that holds the most of
    /// `cells`; among equals, the one nearest the centred window. Counts come from a summed-area table.
    static func densestWindow(_ cells: [(Int, Int)], rows: Int, cols: Int, side: Int) -> (row: Int, col: Int) {
        let h = min(rows, side), w = min(cols, side)
        var sums = [Int](repeating: 0, count: (rows + 1) * (cols + 1))
        for (r, c) in cells { sums[(r + 1) * (cols + 1) + c + 1] += 1 }
        for r in 1 ... rows { for c in 1 ... cols {
            sums[r * (cols + 1) + c] += sums[(r - 1) * (cols + 1) + c] + sums[r * (cols + 1) + c - 1] - sums[(r - 1) * (cols + 1) + c - 1]
        } }
        let centre = ((rows - h) / 2, (cols - w) / 2)
        var best = centre, bestCount = -1, bestDistance = Int.max
        for r in 0 ... rows - h { for c in 0 ... cols - w {
            let count = sums[(r + h) * (cols + 1) + c + w] - sums[r * (cols + 1) + c + w] - sums[(r + h) * (cols + 1) + c] + sums[r * (cols + 1) + c]
            let distance = abs(r - centre.0) + abs(c - centre.1)
            if count > bestCount || (count == bestCount && distance < bestDistance) { (best, bestCount, bestDistance) = ((r, c), count, distance) }
        } }
        return (best.0, best.1)
    }

    static func describe(_ tilings: [TilingInfo]) -> String {
        tilings.map { t in
            let at = t.targetMPP.map { "\($0) um/px" } ?? t.level.map { "level \($0)" } ?? "?"
            return "\(t.id): \(t.patchSize) px at \(at), \(t.doneSlides) slides"
        }.joined(separator: "; ")
    }

    /// The slide's patches under a tiling laid on the bounding box of its tissue. Tissue wider than `maxGrid` keeps the
    /// `maxGrid` x `maxGrid` window holding the most patches (the most central of equals), so a slide whose tissue
    /// lies off-centre is never cropped to nothing.
    static func makeImage(_ slide: TrainingSlide, tilingID: Int64, index: PatchIndex, maxGrid: Int) throws -> TrainingImage {
        let patches = try index.patches(slideID: slide.id, tilingID: tilingID)
        guard let first = patches.first else {
            return TrainingImage(slideID: slide.id, key: slide.key, path: slide.path, label: slide.label, split: slide.split, fold: slide.fold,
                                 grid: PatchGrid(rows: 0, cols: 0, cells: []), rowOffset: 0, colOffset: 0, tilingID: tilingID, locations: [],
                                 croppedPatches: 0)
        }
        var r0 = first.gridRow, r1 = first.gridRow, c0 = first.gridCol, c1 = first.gridCol
        for p in patches {
            r0 = min(r0, p.gridRow); r1 = max(r1, p.gridRow)
            c0 = min(c0, p.gridCol); c1 = max(c1, p.gridCol)
        }
        var rows = r1 - r0 + 1, cols = c1 - c0 + 1
        if rows > maxGrid || cols > maxGrid {
            let window = densestWindow(patches.map { ($0.gridRow - r0, $0.gridCol - c0) }, rows: rows, cols: cols, side: maxGrid)
            r0 += window.row
            c0 += window.col
            rows = min(rows, maxGrid)
            cols = min(cols, maxGrid)
        }
        var cells: [(Int, PatchLocation)] = []
        for p in patches {
            let r = p.gridRow - r0, c = p.gridCol - c0
            guard r >= 0, r < rows, c >= 0, c < cols else { continue }
            cells.append((r * cols + c, PatchLocation(path: slide.path, level0X: p.level0X, level0Y: p.level0Y, level: p.level, readSize: p.readSize)))
        }
        cells.sort { $0.0 < $1.0 }
        return TrainingImage(slideID: slide.id, key: slide.key, path: slide.path, label: slide.label, split: slide.split, fold: slide.fold,
                             grid: PatchGrid(rows: rows, cols: cols, cells: cells.map(\.0)), rowOffset: r0, colOffset: c0,
                             tilingID: tilingID, locations: cells.map(\.1), croppedPatches: patches.count - cells.count)
    }
}
