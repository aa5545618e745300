import Foundation
import Seeded
import SlideIO

/// A tissue-like blob: an ellipse of pink/purple stain on white, with known position (level-0 pixels).
public struct Blob: Sendable, Equatable {
    public var centerX: Double
    public var centerY: Double
    public var radiusX: Double
    public var radiusY: Double

    public init(centerX: Double, centerY: Double, radiusX: Double, radiusY: Double) {
        self.centerX = centerX
        self.centerY = centerY
        self.radiusX = radiusX
        self.radiusY = radiusY
    }

    /// Whether level-0 pixel (x, y) lies inside the blob.
    public func contains(x: Double, y: Double) -> Bool {
        let dx = (x - centerX) / radiusX, dy = (y - centerY) / radiusY
        return dx * dx + dy * dy <= 1
    }
}

/// Writes synthetic pyramidal slides for tests: blobs of H&E-like colour on a white background.
///
/// Each pixel is a pure function of its level-0 position, so a test can predict any pixel
/// (`SyntheticSlide.expectedPixel`) and the writer renders tiles without holding the image.
public struct SyntheticSlide: Sendable {
    public var width: Int
    public var height: Int
    public var blobs: [Blob]
    public var channels: Int = 3
    public var options = PyramidTIFFOptions()

    public init(width: Int, height: Int, blobs: [Blob], channels: Int = 3, options: PyramidTIFFOptions = PyramidTIFFOptions()) {
        self.width = width
        self.height = height
        self.blobs = blobs
        self.channels = channels
        self.options = options
    }

    /// A PANDA-shaped slide: 3 levels (downsample 1/4/16), JPEG tiles, mpp from resolution tags.
    public static func panda(width: Int, height: Int, blobs: [Blob], mpp: Double = 0.486) -> SyntheticSlide {
        var options = PyramidTIFFOptions.panda
        options.micronsPerPixel = mpp
        return SyntheticSlide(width: width, height: height, blobs: blobs, options: options)
    }

    /// The RGB value at level-0 pixel (x, y): white outside blobs, a textured stain inside.
    public static func expectedPixel(x: Int, y: Int, blobs: [Blob]) -> (UInt8, UInt8, UInt8) {
        let fx = Double(x) + 0.5, fy = Double(y) + 0.5
        guard blobs.contains(where: { $0.contains(x: fx, y: fy) }) else { return (255, 255, 255) }
        // Stain with a gentle texture (nuclei-like darker dots every 16 px), well saturated so tissue detection sees it.
        let dark = (x / 8 + y / 8) % 2 == 0 ? 40 : 0
        return (UInt8(200 - dark), UInt8(90 - dark / 2), UInt8(170 - dark / 4))
    }

    /// Writes the slide to `path` through the pyramid writer.
    public func write(to path: String) throws {
        let blobs = self.blobs, channels = self.channels
        try PyramidTIFFWriter.write(to: path, width: width, height: height, channels: channels, options: options) { tile, pixels in
            // Skip tiles no blob touches: they stay white.
            let x0 = Double(tile.x), x1 = Double(tile.x + tile.width)
            let y0 = Double(tile.y), y1 = Double(tile.y + tile.height)
            let touched = blobs.contains { (b: Blob) -> Bool in
                let overlapsX = b.centerX + b.radiusX >= x0 && b.centerX - b.radiusX <= x1
                let overlapsY = b.centerY + b.radiusY >= y0 && b.centerY - b.radiusY <= y1
                return overlapsX && overlapsY
            }
            guard touched else { return }
            for row in 0 ..< tile.height {
                for col in 0 ..< tile.width {
                    let (r, g, b) = SyntheticSlide.expectedPixel(x: tile.x + col, y: tile.y + row, blobs: blobs)
                    let o = (row * tile.tileSize + col) * channels
                    if channels == 3 {
                        pixels[o] = r; pixels[o + 1] = g; pixels[o + 2] = b
                    } else {
                        let luma: Int = 299 * Int(r) + 587 * Int(g) + 114 * Int(b)
                        pixels[o] = UInt8((luma + 500) / 1000)
                    }
                }
            }
        }
    }
}

extension SyntheticSlide {
    /// `count` blobs at seeded random places, each 3-12% of the shorter side in radius, kept inside the image.
    public static func randomBlobs(width: Int, height: Int, count: Int, seed: UInt64) -> [Blob] {
        var rng = SplitMix64(seed: seed)
        let side = Double(min(width, height))
        return (0 ..< count).map { _ in
            let rx = side * Double.random(in: 0.03 ... 0.12, using: &rng)
            let ry = side * Double.random(in: 0.03 ... 0.12, using: &rng)
            return Blob(centerX: Double.random(in: rx ... max(rx, Double(width) - rx), using: &rng),
                        centerY: Double.random(in: ry ... max(ry, Double(height) - ry), using: &rng),
                        radiusX: rx, radiusY: ry)
        }
    }
}
