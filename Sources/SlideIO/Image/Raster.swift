/// An 8-bit image in memory: `height` rows of `width` pixels, `channels` interleaved samples each (1 gray, 3 RGB).
///
/// Rasters are what slide reads return and what the TIFF writer's tile sources fill. They are
/// always small (a patch, a tile, a thumbnail): a whole slide level never becomes a `Raster`.
public struct Raster: Sendable, Equatable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// Samples per pixel: 1 (gray) or 3 (RGB).
    public let channels: Int
    /// Row-major samples, `height * width * channels` bytes.
    public var pixels: [UInt8]

    /// A raster filled with one sample value (255 = white background).
    public init(width: Int, height: Int, channels: Int, fill: UInt8 = 255) {
        precondition(width >= 0 && height >= 0 && (channels == 1 || channels == 3), "bad raster shape \(width)x\(height)x\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = [UInt8](repeating: fill, count: width * height * channels)
    }

    /// A raster around existing samples; `pixels.count` must be `width * height * channels`.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * channels, "raster \(width)x\(height)x\(channels) needs \(width * height * channels) samples, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// The samples of pixel (x, y).
    public func pixel(x: Int, y: Int) -> ArraySlice<UInt8> {
        let start = (y * width + x) * channels
        return pixels[start ..< start + channels]
    }

    /// The rectangle `[x, x+w) x [y, y+h)` as a new raster; parts outside are `fill`.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int, fill: UInt8 = 255) -> Raster {
        var out = Raster(width: w, height: h, channels: channels, fill: fill)
        let x0 = max(0, x), x1 = min(width, x + w)
        guard x0 < x1 else { return out }
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for row in max(0, y) ..< min(height, y + h) {
                    let s = (row * width + x0) * channels
                    let d = ((row - y) * w + (x0 - x)) * channels
                    for i in 0 ..< (x1 - x0) * channels { dst[d + i] = src[s + i] }
                }
            }
        }
        return out
    }

    /// Copies a `tileSize` x `tileSize` tile (row stride `tileSize * channels`) into this raster at (x, y), clipped to it.
    public mutating func paste(_ tile: UnsafeBufferPointer<UInt8>, tileSize: Int, atX x: Int, y: Int) {
        let c = channels, w = width
        let columns = min(tileSize, w - x)
        guard columns > 0, x >= 0, y >= 0 else { return }
        pixels.withUnsafeMutableBufferPointer { dst in
            for row in 0 ..< min(tileSize, height - y) {
                let s = row * tileSize * c, d = ((y + row) * w + x) * c
                for i in 0 ..< columns * c { dst[d + i] = tile[s + i] }
            }
        }
    }

    /// Converts to RGB (gray is replicated) or to gray (ITU-R BT.601 luma); same raster when already so.
    public func converted(toChannels target: Int) -> Raster {
        if target == channels { return self }
        var out = Raster(width: width, height: height, channels: target)
        let n = width * height
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                if target == 3 {
                    for i in 0 ..< n { let v = src[i]; dst[3 * i] = v; dst[3 * i + 1] = v; dst[3 * i + 2] = v }
                } else {
                    for i in 0 ..< n {
                        let luma = 299 * Int(src[3 * i]) + 587 * Int(src[3 * i + 1]) + 114 * Int(src[3 * i + 2])
                        dst[i] = UInt8((luma + 500) / 1000)
                    }
                }
            }
        }
        return out
    }
}
