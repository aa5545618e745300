import Foundation
import PatchIndex
import SlideIO
import Tissue

/// What ingesting one slide produced: its metadata, grid, kept patches and what tissue detection found.
public struct SlideResult: Sendable {
    public var metadata: SlideMetadata
    public var grid: GridPlan
    /// Kept patches (slide and tiling ids are filled in when stored).
    public var patches: [PatchCell]
    public var tissueSummary: String
}

/// How QC pictures are written.
public enum QCFormat: String, Sendable, CaseIterable, Codable {
    case jpeg, png
    public var fileExtension: String { self == .jpeg ? "jpg" : "png" }
}

/// Where and how one slide's QC picture is written.
public struct QCOutput: Sendable {
    public var path: String
    public var format: QCFormat
    /// Longest side (nil: the mask's).
    public var maxSize: Int?
}

/// Ingests one slide: open, plan the grid, detect tissue on a thumbnail, score and keep patches, draw the QC picture.
public enum SlideIngester {
    /// Processes the slide at `path`. OpenSlide failures come out as `SlideError`, grid problems as `IngestError`.
    public static func process(path: String, settings: IngestSettings, qc: QCOutput?) throws -> SlideResult {
        let slide = try Slide(path: path)
        let grid = try GridPlan.make(levels: slide.levels, mpp: slide.mpp, settings: settings)
        let (w0, h0) = slide.dimensions
        // Mask resolution: at most maskMaxSize on the long side, unless a patch would cover fewer than 4 mask pixels.
        let needed = Int((4 * Double(max(w0, h0)) / grid.extent0).rounded(.up))
        let maxSize = min(8192, max(settings.maskMaxSize, needed))
        let thumbnail = try slide.thumbnail(maxSize: maxSize)
        let mpp = slide.mpp.x.flatMap { x in slide.mpp.y.map { (x, $0) } }
        let mask = TissueDetector.detect(thumbnail: thumbnail, downsampleX: Double(w0) / Double(thumbnail.width),
                                         downsampleY: Double(h0) / Double(thumbnail.height), micronsPerPixel: mpp,
                                         parameters: settings.tissue)
        let scorer = PatchScorer(mask: mask)
        let keepAll = settings.tissue.method == "none"
        var patches: [PatchCell] = []
        for row in 0 ..< grid.rows {
            for col in 0 ..< grid.cols {
                let (x, y) = grid.origin(row: row, col: col)
                let s = scorer.scores(level0X: x, level0Y: y, extent: grid.extent0)
                if !keepAll {
                    guard s.tissue >= settings.minTissue, s.tissue > 0 else { continue }
                    if let limit = settings.maxWhitespace, s.whitespace > limit { continue }
                    if let limit = settings.maxGrayspace, s.grayspace > limit { continue }
                    if let limit = settings.maxBlack, s.black > limit { continue }
                }
                patches.append(PatchCell(level0X: x, level0Y: y, gridRow: row, gridCol: col, tissueFraction: keepAll ? 1 : min(1, s.tissue)))
            }
        }
        if let qc {
            let legend = "\(patches.count) patches kept  min tissue \(String(format: "%.2f", settings.minTissue))  \(settings.tissue.method)"
            var picture = QCPicture.draw(mask: mask, patches: patches.map { ($0.level0X, $0.level0Y) }, extent: grid.extent0, legend: legend)
            let side = max(picture.width, picture.height)
            if let limit = qc.maxSize, side > limit {
                picture = Resample.area(picture, width: max(1, picture.width * limit / side), height: max(1, picture.height * limit / side))
            }
            switch qc.format {
            // Quality 60, progressive: a 2048 px picture of a TCGA slide's dense tissue is 480 KB (85: 870 KB).
            case .jpeg: try JPEG.write(picture, to: qc.path, quality: 60, progressive: true)
            case .png: try PNG.write(picture, to: qc.path)
            }
        }
        let metadata = SlideMetadata(vendor: slide.vendor, width: w0, height: h0, levelCount: slide.levels.count,
                                     mppX: slide.mpp.x, mppY: slide.mpp.y, mppSource: slide.mpp.source.rawValue,
                                     quickHash: slide.properties["openslide.quickhash-1"])
        return SlideResult(metadata: metadata, grid: grid, patches: patches, tissueSummary: mask.summary)
    }
}
