import SlideIO

/// Where a slide's patches lie: the level read, the size read there, and the level-0 grid.
///
/// Row `r`, column `c` has its level-0 origin at `(c * step0, r * step0)`; the grid covers the whole slide,
/// so the last row and column may reach past the edge (read as white background).
public struct GridPlan: Sendable, Equatable {
    /// Pyramid level patches are read from.
    public var readLevel: Int
    /// Side read at that level (resampled to the patch size when it differs).
    public var readSize: Int
    /// Level-0 side of one patch and level-0 step between patches.
    public var extent0: Double
    public var step0: Double
    public var rows: Int
    public var cols: Int

    /// Level-0 origin of the patch in row `row`, column `col`.
    public func origin(row: Int, col: Int) -> (x: Int, y: Int) {
        (Int((Double(col) * step0).rounded()), Int((Double(row) * step0).rounded()))
    }

    /// Plans a grid for a slide with `levels` and `mpp` under `settings`.
    ///
    /// - By level: patches of `patchSize` pixels at that level.
    /// - By mpp: the target downsample is `mpp / slide mpp`; patches are read from the finest level not
    ///   coarser than that, at the size that covers the same area, and resampled to `patchSize`.
    /// - Throws: `IngestError` when the level does not exist or mpp is requested but unknown.
    public static func make(levels: [SlideLevel], mpp: MicronsPerPixel, settings: IngestSettings) throws(IngestError) -> GridPlan {
        let stride = settings.stride ?? settings.patchSize
        let (w0, h0) = (Double(levels[0].width), Double(levels[0].height))
        var readLevel = 0, target = 1.0
        if let targetMPP = settings.mpp {
            guard let slideMPP = mpp.x else {
                throw IngestError("microns per pixel unknown (no openslide.mpp-x, no TIFF resolution tags): tile it with --level instead of --mpp")
            }
            target = targetMPP / slideMPP
            for (i, level) in levels.enumerated() where level.downsample <= target * 1.000_1 { readLevel = i }
        } else {
            readLevel = settings.level ?? 0
            guard levels.indices.contains(readLevel) else {
                throw IngestError("level \(readLevel) does not exist: the slide has \(levels.count) level\(levels.count == 1 ? "" : "s") (0...\(levels.count - 1))")
            }
            target = levels[readLevel].downsample
        }
        let readSize = max(1, Int((Double(settings.patchSize) * target / levels[readLevel].downsample).rounded()))
        let step0 = Double(stride) * target
        return GridPlan(readLevel: readLevel, readSize: readSize, extent0: Double(settings.patchSize) * target, step0: step0,
                        rows: max(1, Int((h0 / step0).rounded(.up))), cols: max(1, Int((w0 / step0).rounded(.up))))
    }
}
