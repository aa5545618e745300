import Basics
import Foundation
import SlideIO
import Tissue

/// Per-slide heatmaps of a prediction: each patch's score on the slide's thumbnail (JPEG, with legend) and as numbers
/// (CSV: row, col, level0_x, level0_y, score, and occlusion when computed).
enum Heatmaps {
    /// Longest side of the heatmap picture.
    static let thumbnailSize = 1024

    /// File name stem of a slide's heatmap files (its key, with folders flattened).
    static func stem(_ image: TrainingImage) -> String { image.key.replacingOccurrences(of: "/", with: "_") }

    static func write(_ image: TrainingImage, scores: [Float], occlusion: [Float]?, to folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let base = (folder as NSString).appendingPathComponent(stem(image))
        var lines = ["row,col,level0_x,level0_y,score" + (occlusion == nil ? "" : ",occlusion")]
        for (i, cell) in image.grid.cells.enumerated() {
            let location = image.locations[i]
            var fields = [String(cell / image.grid.cols + image.rowOffset), String(cell % image.grid.cols + image.colOffset),
                          String(location.region.level0X), String(location.region.level0Y), String(format: "%.6g", scores[i])]
            if let occlusion { fields.append(String(format: "%.6g", occlusion[i])) }
            lines.append(fields.joined(separator: ","))
        }
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: base + ".csv")

        let slide = try Slide(path: image.path)
        let thumbnail = try slide.thumbnail(maxSize: thumbnailSize)
        let sx = Double(thumbnail.width) / Double(slide.dimensions.width), sy = Double(thumbnail.height) / Double(slide.dimensions.height)
        let cells = image.grid.cells.indices.map { i -> HeatmapPicture.Cell in
            let region = image.locations[i].region
            let extent = Double(region.width) * (region.level < slide.levels.count ? slide.levels[region.level].downsample : 1)
            let x0 = Int((Double(region.level0X) * sx).rounded()), y0 = Int((Double(region.level0Y) * sy).rounded())
            let x1 = Int(((Double(region.level0X) + extent) * sx).rounded()), y1 = Int(((Double(region.level0Y) + extent) * sy).rounded())
            return HeatmapPicture.Cell(x: x0, y: y0, width: max(1, x1 - x0), height: max(1, y1 - y0), score: scores[i])
        }
        try JPEG.write(HeatmapPicture.draw(thumbnail: thumbnail, cells: cells), to: base + ".jpg", quality: 80)
        try JPEG.write(thumbnail.converted(toChannels: 3), to: base + ".thumb.jpg", quality: 80)
    }
}
