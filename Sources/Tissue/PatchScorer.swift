import SlideIO

/// Fractions of a patch that are tissue, white, gray or near-black, from the thumbnail-resolution mask and pixels.
public struct PatchScores: Sendable, Equatable {
    public var tissue: Double
    /// Bright, unsaturated pixels (value >= 220, saturation <= 30): glass.
    public var whitespace: Double
    /// Unsaturated pixels (saturation < 20) of any brightness: pen-free gray areas, out-of-focus glass.
    public var grayspace: Double
    /// Near-black pixels (value < 40): dark artefacts, folds, marker.
    public var black: Double
}

/// Scores patches of any level-0 rectangle in constant time from summed-area tables.
public struct PatchScorer: Sendable {
    private let width: Int
    private let height: Int
    private let downsampleX: Double
    private let downsampleY: Double
    private let tissue: [Int32]
    private let white: [Int32]
    private let gray: [Int32]
    private let black: [Int32]

    public init(mask: TissueMask) {
        width = mask.mask.width
        height = mask.mask.height
        downsampleX = mask.downsampleX
        downsampleY = mask.downsampleY
        let (s, v) = TissueDetector.hsv(mask.thumbnail)
        func table(_ predicate: (UInt8, UInt8) -> Bool) -> [Int32] {
            BinaryImage(width: mask.mask.width, height: mask.mask.height,
                        bits: (0 ..< s.count).map { predicate(s[$0], v[$0]) ? 1 : 0 }).integral()
        }
        tissue = mask.mask.integral()
        white = table { s, v in v >= 220 && s <= 30 }
        gray = table { s, _ in s < 20 }
        black = table { _, v in v < 40 }
    }

    /// Scores of the level-0 rectangle at (x, y) of side `extent`; the parts beyond the slide count as background.
    public func scores(level0X x: Int, level0Y y: Int, extent: Double) -> PatchScores {
        let fx0 = Double(x) / downsampleX, fy0 = Double(y) / downsampleY
        let fx1 = (Double(x) + extent) / downsampleX, fy1 = (Double(y) + extent) / downsampleY
        let ix0 = Int(fx0.rounded(.down)), iy0 = Int(fy0.rounded(.down))
        let ix1 = max(ix0 + 1, Int(fx1.rounded(.up))), iy1 = max(iy0 + 1, Int(fy1.rounded(.up)))
        let area = Double((ix1 - ix0) * (iy1 - iy0))
        let cx0 = min(max(ix0, 0), width), cx1 = min(max(ix1, 0), width)
        let cy0 = min(max(iy0, 0), height), cy1 = min(max(iy1, 0), height)
        let w1 = width + 1
        func sum(_ t: [Int32]) -> Double {
            Double(t[cy1 * w1 + cx1] - t[cy0 * w1 + cx1] - t[cy1 * w1 + cx0] + t[cy0 * w1 + cx0])
        }
        return PatchScores(tissue: sum(tissue) / area, whitespace: sum(white) / area, grayspace: sum(gray) / area, black: sum(black) / area)
    }
}

/// Quality-control pictures: the thumbnail, the tissue outline in green, kept patches outlined in blue.
public enum QCPicture {
    /// Draws `mask`'s outline and the patches (level-0 origin and side) over its thumbnail.
    /// The QC picture with a legend strip below it: the outline and grid colours, the kept patch count and the
    /// tissue threshold (and any other settings given in `legend`).
    public static func draw(mask: TissueMask, patches: [(x: Int, y: Int)], extent: Double, legend: String) -> Raster {
        let picture = draw(mask: mask, patches: patches, extent: extent)
        let scale = max(1, min(4, picture.width / 400)), strip = 9 * scale + 8
        var canvas = Raster(width: max(picture.width, 120), height: picture.height + strip, channels: 3)
        for y in 0 ..< picture.height {
            let d = 3 * y * canvas.width, s = 3 * y * picture.width
            canvas.pixels.replaceSubrange(d ..< d + 3 * picture.width, with: picture.pixels[s ..< s + 3 * picture.width])
        }
        let y0 = picture.height + 4, box = 5 * scale
        func square(_ x: Int, _ color: (UInt8, UInt8, UInt8), filled: Bool) {
            for dy in 0 ..< box { for dx in 0 ..< box where filled || dx == 0 || dy == 0 || dx == box - 1 || dy == box - 1 {
                let px = x + dx, py = y0 + dy
                guard px < canvas.width, py < canvas.height else { continue }
                let o = 3 * (py * canvas.width + px)
                canvas.pixels[o] = color.0; canvas.pixels[o + 1] = color.1; canvas.pixels[o + 2] = color.2
            } }
        }
        square(4, (0, 200, 0), filled: true)
        Digits.write("tissue", x: 4 + box + 2 * scale, y: y0, scale: scale, into: &canvas)
        let next = 4 + box + 2 * scale + Digits.width("tissue ", scale: scale)
        square(next, (20, 60, 255), filled: false)
        Digits.write(legend, x: next + box + 2 * scale, y: y0, scale: scale, into: &canvas)
        return canvas
    }

    public static func draw(mask: TissueMask, patches: [(x: Int, y: Int)], extent: Double) -> Raster {
        var canvas = mask.thumbnail.converted(toChannels: 3)
        let w = canvas.width, h = canvas.height
        func paint(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
            guard x >= 0, y >= 0, x < w, y < h else { return }
            let o = (y * w + x) * 3
            canvas.pixels[o] = color.0; canvas.pixels[o + 1] = color.1; canvas.pixels[o + 2] = color.2
        }
        let bits = mask.mask.bits
        for y in 0 ..< h {
            for x in 0 ..< w where bits[y * w + x] == 1 {
                let edge = x == 0 || y == 0 || x == w - 1 || y == h - 1
                    || bits[y * w + x - 1] == 0 || bits[y * w + x + 1] == 0 || bits[(y - 1) * w + x] == 0 || bits[(y + 1) * w + x] == 0
                if edge { paint(x, y, (0, 200, 0)) }
            }
        }
        for patch in patches {
            let x0 = Int((Double(patch.x) / mask.downsampleX).rounded()), y0 = Int((Double(patch.y) / mask.downsampleY).rounded())
            let x1 = Int(((Double(patch.x) + extent) / mask.downsampleX).rounded()) - 1
            let y1 = Int(((Double(patch.y) + extent) / mask.downsampleY).rounded()) - 1
            guard x1 >= x0, y1 >= y0 else { continue }
            for x in x0 ... x1 { paint(x, y0, (20, 60, 255)); paint(x, y1, (20, 60, 255)) }
            for y in y0 ... y1 { paint(x0, y, (20, 60, 255)); paint(x1, y, (20, 60, 255)) }
        }
        return canvas
    }
}
