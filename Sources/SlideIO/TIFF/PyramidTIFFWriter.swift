import Basics
import CTIFF
import Foundation

/// How a pyramidal TIFF is laid out: tiles, compression, pyramid shape and resolution.
public struct PyramidTIFFOptions: Sendable, Equatable {
    /// Tile compression.
    ///
    /// There is no uncompressed option: OpenSlide 3.4.1 fails on uncompressed tiles of some level shapes.
    public enum Compression: Sendable, Equatable {
        /// Lossless deflate with horizontal differencing.
        case deflate
        /// JPEG at the given quality (1-100); RGB is stored as YCbCr 4:2:0, as scanners do.
        case jpeg(quality: Int)
    }

    /// Tile side in pixels (a multiple of 16).
    public var tileSize: Int = 256
    public var compression: Compression = .deflate
    /// Downsample from one level to the next: 2 or 4.
    public var downsamplePerLevel: Int = 2
    /// Number of levels including level 0; nil adds levels until the smallest fits in one tile.
    public var levelCount: Int? = nil
    /// Microns per level-0 pixel, written as X/YResolution in pixels per centimetre so OpenSlide reports it.
    public var micronsPerPixel: Double? = nil
    /// Free text for the ImageDescription tag (must not start with "Aperio", which would change OpenSlide's reader).
    public var imageDescription: String? = nil

    public init(tileSize: Int = 256, compression: Compression = .deflate, downsamplePerLevel: Int = 2,
                levelCount: Int? = nil, micronsPerPixel: Double? = nil, imageDescription: String? = nil) {
        self.tileSize = tileSize
        self.compression = compression
        self.downsamplePerLevel = downsamplePerLevel
        self.levelCount = levelCount
        self.micronsPerPixel = micronsPerPixel
        self.imageDescription = imageDescription
    }

    /// PANDA's layout: 3 levels at downsample 1/4/16, JPEG tiles of 256 x 256 (as the published slides).
    public static let panda = PyramidTIFFOptions(tileSize: 256, compression: .jpeg(quality: 90), downsamplePerLevel: 4, levelCount: 3)
}

/// The part of level 0 a tile source is asked to render.
public struct TileRequest: Sendable, Equatable {
    /// Level-0 origin of the tile.
    public let x: Int
    public let y: Int
    /// Pixels of the tile inside the image (less than `tileSize` at the right and bottom edges).
    public let width: Int
    public let height: Int
    /// Side of the tile buffer; its row stride is `tileSize * channels`.
    public let tileSize: Int
}

/// Writes tiled, pyramidal TIFFs that OpenSlide opens as `generic-tiff`, one tile at a time.
///
/// Level 0 is rendered tile by tile by the caller's source and written at once; each level-0 tile
/// is box-reduced into a one-tile-row band of level 1, whose finished bands feed level 2, and so on,
/// so memory holds one band per level and never the image. Reduced levels go to lossless temporary
/// TIFFs beside the output and are appended once level 0 is complete; the output appears atomically
/// (temporary name, then rename).
public enum PyramidTIFFWriter {
    /// Fills one tile: `pixels` is `tileSize * tileSize * channels` bytes, pre-filled with white.
    public typealias TileSource = (_ tile: TileRequest, _ pixels: UnsafeMutableBufferPointer<UInt8>) throws -> Void

    /// Level sizes the writer produces for an image: each level is the previous one divided by the downsample, rounded down.
    ///
    /// With `levelCount` nil, levels are added until the smallest fits in one tile. Either way no level
    /// whose shorter side would fall below 16 pixels (the smallest TIFF tile) is added.
    public static func levelSizes(width: Int, height: Int, options: PyramidTIFFOptions) -> [(width: Int, height: Int)] {
        var sizes = [(width: width, height: height)]
        while true {
            let last = sizes[sizes.count - 1]
            if let count = options.levelCount {
                if sizes.count >= count { break }
            } else if max(last.width, last.height) <= options.tileSize {
                break
            }
            let next = (width: last.width / options.downsamplePerLevel, height: last.height / options.downsamplePerLevel)
            if min(next.width, next.height) < 16 { break }
            sizes.append(next)
        }
        return sizes
    }

    /// The tile shape used for a level: the requested side, shrunk (to a multiple of 16) where the level is smaller.
    ///
    /// OpenSlide 3.4.1 decodes non-JPEG tiles with `TIFFReadRGBATile`, which libtiff 4.5 truncates when a
    /// tile is wider or taller than the whole image; OpenSlide then returns misaligned pixels for such levels.
    /// Tiles that never exceed their level avoid that for every compression.
    public static func tileShape(width: Int, height: Int, tileSize: Int) -> (width: Int, height: Int) {
        (min(tileSize, max(16, width / 16 * 16)), min(tileSize, max(16, height / 16 * 16)))
    }

    /// Writes a `width` x `height` image of `channels` (1 or 3) samples to `path`, rendering level 0 through `source`.
    ///
    /// - Throws: `TIFFError` for libtiff failures and bad options; any error `source` throws, unchanged. No partial file is left behind.
    public static func write(to path: String, width: Int, height: Int, channels: Int,
                             options: PyramidTIFFOptions = PyramidTIFFOptions(), source: TileSource) throws {
        let t = options.tileSize, d = options.downsamplePerLevel
        guard width > 0, height > 0 else { throw TIFFError(path: path, message: "image size must be positive, got \(width)x\(height)") }
        guard channels == 1 || channels == 3 else { throw TIFFError(path: path, message: "channels must be 1 or 3, got \(channels)") }
        guard t >= 16, t % 16 == 0 else { throw TIFFError(path: path, message: "tile size must be a multiple of 16, got \(t)") }
        guard d == 2 || d == 4 else { throw TIFFError(path: path, message: "downsample per level must be 2 or 4, got \(d)") }
        if case .jpeg(let q) = options.compression, !(1 ... 100).contains(q) {
            throw TIFFError(path: path, message: "JPEG quality must be 1...100, got \(q)")
        }
        let sizes = levelSizes(width: width, height: height, options: options)
        // The main file is written under a temporary name, synced and renamed into place (AtomicFile); the reduced levels
        // are built in temporary files of their own and copied in after level 0.
        try AtomicFile.replace(path) { mainPath in
            let token = "\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0 ... .max))"
            var temporaries: [String] = []
            defer { for file in temporaries { try? FileManager.default.removeItem(atPath: file) } }

            let big = width * height * channels > Int(Int32.max) / 2
            let main = try TIFFFile(path: mainPath, mode: big ? "w8" : "w")
            var bands: [Band] = []
            for k in 1 ..< sizes.count {
                let tempPath = "\(path).level\(k).tmp-\(token)"
                temporaries.append(tempPath)
                let file = try TIFFFile(path: tempPath, mode: big ? "w8" : "w")
                try setUpDirectory(file, width: sizes[k].width, height: sizes[k].height, channels: channels, tileWidth: t, tileHeight: t,
                                   compression: .deflate, level: k, options: options)
                bands.append(Band(level: k, width: sizes[k].width, height: sizes[k].height, channels: channels, tileSize: t, file: file))
            }

            // Level 0: render, write, and reduce each tile into level 1's band.
            let shape0 = tileShape(width: width, height: height, tileSize: t)
            try setUpDirectory(main, width: width, height: height, channels: channels, tileWidth: shape0.width, tileHeight: shape0.height,
                               compression: options.compression, level: 0, options: options)
            let tileBytes = t * t * channels
            let tile = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: tileBytes)
            defer { tile.deallocate() }
            let tilesDown = (height + t - 1) / t, tilesAcross = (width + t - 1) / t
            var smallLevel0 = shape0 == (t, t) ? nil : Raster(width: width, height: height, channels: channels)
            for ty in 0 ..< tilesDown {
                for tx in 0 ..< tilesAcross {
                    tile.initialize(repeating: 255)
                    let request = TileRequest(x: tx * t, y: ty * t, width: min(t, width - tx * t), height: min(t, height - ty * t), tileSize: t)
                    try source(request, tile)
                    if smallLevel0 != nil {
                        smallLevel0!.paste(UnsafeBufferPointer(tile), tileSize: t, atX: tx * t, y: ty * t)
                    } else {
                        try writeTile(main, x: tx * t, y: ty * t, pixels: UnsafeMutableRawPointer(tile.baseAddress!), bytes: tileBytes)
                    }
                    if let first = bands.first {
                        first.reduce(from: UnsafePointer(tile.baseAddress!), stride: t * channels, columns: t, rows: t,
                                     factor: d, toColumn: tx * t / d, row: (ty % d) * t / d)
                    }
                }
                if !bands.isEmpty && ((ty + 1) % d == 0 || ty == tilesDown - 1) {
                    try flush(bands, index: 0, bandRow: ty / d, factor: d)
                }
            }
            if let smallLevel0 { try writeRetiled(main, smallLevel0, tileWidth: shape0.width, tileHeight: shape0.height, level: 0) }
            guard TIFFWriteDirectory(main.tif) == 1 else { throw main.error("cannot write level 0 directory") }

            // Reduced levels: copy each temporary into the output with the requested compression.
            for band in bands {
                let tempPath = temporaries[band.level - 1]
                band.file = nil // closes and finalises the temporary
                let temp = try TIFFFile(path: tempPath, mode: "r")
                let shape = tileShape(width: band.width, height: band.height, tileSize: t)
                try setUpDirectory(main, width: band.width, height: band.height, channels: channels, tileWidth: shape.width,
                                   tileHeight: shape.height, compression: options.compression, level: band.level, options: options)
                var small = shape == (t, t) ? nil : Raster(width: band.width, height: band.height, channels: channels)
                for index in 0 ..< Int(TIFFNumberOfTiles(temp.tif)) {
                    guard TIFFReadEncodedTile(temp.tif, UInt32(index), tile.baseAddress, tmsize_t(tileBytes)) >= 0 else {
                        throw temp.error("cannot read back tile \(index) of level \(band.level)")
                    }
                    if small != nil {
                        small!.paste(UnsafeBufferPointer(tile), tileSize: t, atX: (index % band.tilesAcross) * t, y: (index / band.tilesAcross) * t)
                    } else if TIFFWriteEncodedTile(main.tif, UInt32(index), tile.baseAddress, tmsize_t(tileBytes)) < 0 {
                        throw main.error("cannot write tile \(index) of level \(band.level)")
                    }
                }
                if let small { try writeRetiled(main, small, tileWidth: shape.width, tileHeight: shape.height, level: band.level) }
                guard TIFFWriteDirectory(main.tif) == 1 else { throw main.error("cannot write level \(band.level) directory") }
            }
            guard TIFFFlush(main.tif) == 1 else { throw main.error("cannot flush") }
            withExtendedLifetime(main) {}
            _ = consume main
        }
    }

    /// Writes band `bandRow` of `bands[index]` (when it lies in the level) and reduces it into the next level's band.
    private static func flush(_ bands: [Band], index: Int, bandRow: Int, factor d: Int) throws {
        let band = bands[index]
        let t = band.tileSize
        if bandRow < band.tilesDown {
            for tx in 0 ..< band.tilesAcross {
                try band.writeTile(column: tx, bandRow: bandRow)
            }
            if index + 1 < bands.count {
                let next = bands[index + 1]
                band.buffer.withUnsafeBufferPointer { src in
                    next.reduce(from: src.baseAddress!, stride: band.rowBytes, columns: band.tilesAcross * t, rows: t,
                                factor: d, toColumn: 0, row: (bandRow % d) * t / d)
                }
                if (bandRow + 1) % d == 0 || bandRow == band.tilesDown - 1 {
                    try flush(bands, index: index + 1, bandRow: bandRow / d, factor: d)
                }
            }
        }
        band.reset()
    }

    /// Writes a whole (small) level held in memory as tiles of `tileWidth` x `tileHeight`.
    private static func writeRetiled(_ file: TIFFFile, _ level: Raster, tileWidth tw: Int, tileHeight th: Int, level index: Int) throws(TIFFError) {
        let c = level.channels
        var tile = [UInt8](repeating: 255, count: tw * th * c)
        for y in stride(from: 0, to: level.height, by: th) {
            for x in stride(from: 0, to: level.width, by: tw) {
                let part = level.cropped(x: x, y: y, width: tw, height: th)
                tile.replaceSubrange(0 ..< tile.count, with: part.pixels)
                let written = tile.withUnsafeMutableBytes { raw in
                    TIFFWriteEncodedTile(file.tif, TIFFComputeTile(file.tif, UInt32(x), UInt32(y), 0, 0), raw.baseAddress, tmsize_t(raw.count))
                }
                guard written >= 0 else { throw file.error("cannot write tile at (\(x), \(y)) of level \(index)") }
            }
        }
    }

    private static func writeTile(_ file: TIFFFile, x: Int, y: Int, pixels: UnsafeMutableRawPointer, bytes: Int) throws(TIFFError) {
        let index = TIFFComputeTile(file.tif, UInt32(x), UInt32(y), 0, 0)
        guard TIFFWriteEncodedTile(file.tif, index, pixels, tmsize_t(bytes)) >= 0 else {
            throw file.error("cannot write tile at (\(x), \(y))")
        }
    }

    private static func setUpDirectory(_ file: TIFFFile, width: Int, height: Int, channels: Int, tileWidth: Int, tileHeight: Int,
                                       compression: PyramidTIFFOptions.Compression, level: Int,
                                       options: PyramidTIFFOptions) throws(TIFFError) {
        try file.set(TIFFTAG_SUBFILETYPE, u32: level == 0 ? 0 : Int(FILETYPE_REDUCEDIMAGE))
        try file.set(TIFFTAG_IMAGEWIDTH, u32: width)
        try file.set(TIFFTAG_IMAGELENGTH, u32: height)
        try file.set(TIFFTAG_TILEWIDTH, u32: tileWidth)
        try file.set(TIFFTAG_TILELENGTH, u32: tileHeight)
        try file.set(TIFFTAG_BITSPERSAMPLE, u16: 8)
        try file.set(TIFFTAG_SAMPLESPERPIXEL, u16: channels)
        try file.set(TIFFTAG_PLANARCONFIG, u16: Int(PLANARCONFIG_CONTIG))
        let photometric = channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK
        switch compression {
        case .deflate:
            try file.set(TIFFTAG_COMPRESSION, u16: Int(COMPRESSION_ADOBE_DEFLATE))
            try file.set(TIFFTAG_PHOTOMETRIC, u16: Int(photometric))
            try file.set(TIFFTAG_PREDICTOR, u16: Int(PREDICTOR_HORIZONTAL))
            try file.set(TIFFTAG_ZIPQUALITY, u32: level == 0 ? 6 : 1)
        case .jpeg(let quality):
            try file.set(TIFFTAG_COMPRESSION, u16: Int(COMPRESSION_JPEG))
            if channels == 3 {
                try file.set(TIFFTAG_PHOTOMETRIC, u16: Int(PHOTOMETRIC_YCBCR))
                guard gp_tiff_set_ycbcr_subsampling(file.tif, 2, 2) == 1 else { throw file.error("cannot set YCbCr subsampling") }
                try file.set(TIFFTAG_JPEGQUALITY, u32: quality)
                try file.set(TIFFTAG_JPEGCOLORMODE, u32: Int(JPEGCOLORMODE_RGB))
            } else {
                try file.set(TIFFTAG_PHOTOMETRIC, u16: Int(PHOTOMETRIC_MINISBLACK))
                try file.set(TIFFTAG_JPEGQUALITY, u32: quality)
            }
        }
        if let mpp = options.micronsPerPixel, mpp > 0 {
            let downsample = Double(options.downsamplePerLevel).pow(level)
            let pixelsPerCentimetre = 10_000 / (mpp * downsample)
            try file.set(TIFFTAG_XRESOLUTION, double: pixelsPerCentimetre)
            try file.set(TIFFTAG_YRESOLUTION, double: pixelsPerCentimetre)
            try file.set(TIFFTAG_RESOLUTIONUNIT, u16: Int(RESUNIT_CENTIMETER))
        }
        if level == 0, let text = options.imageDescription { try file.set(TIFFTAG_IMAGEDESCRIPTION, string: text) }
        try file.set(TIFFTAG_SOFTWARE, string: "Gigapatch")
    }
}

private extension Double {
    func pow(_ n: Int) -> Double { (0 ..< n).reduce(1.0) { acc, _ in acc * self } }
}

/// One tile row of a reduced level being assembled, with the temporary TIFF it is written to.
private final class Band {
    let level: Int
    let width: Int
    let height: Int
    let channels: Int
    let tileSize: Int
    let tilesAcross: Int
    let tilesDown: Int
    let rowBytes: Int
    var buffer: [UInt8]
    var file: TIFFFile?

    init(level: Int, width: Int, height: Int, channels: Int, tileSize: Int, file: TIFFFile) {
        self.level = level
        self.width = width
        self.height = height
        self.channels = channels
        self.tileSize = tileSize
        tilesAcross = (width + tileSize - 1) / tileSize
        tilesDown = (height + tileSize - 1) / tileSize
        rowBytes = tilesAcross * tileSize * channels
        buffer = [UInt8](repeating: 255, count: rowBytes * tileSize)
        self.file = file
    }

    /// Box-averages `factor` x `factor` blocks of a source region into this band at (`toColumn`, `row`); what falls outside is dropped.
    func reduce(from src: UnsafePointer<UInt8>, stride: Int, columns: Int, rows: Int, factor: Int, toColumn: Int, row: Int) {
        let c = channels
        let outColumns = min(columns / factor, tilesAcross * tileSize - toColumn)
        let outRows = min(rows / factor, tileSize - row)
        guard outColumns > 0, outRows > 0 else { return }
        let area = factor * factor
        let rowBytes = self.rowBytes
        buffer.withUnsafeMutableBufferPointer { dst in
            for oy in 0 ..< outRows {
                for ox in 0 ..< outColumns {
                    for k in 0 ..< c {
                        var sum = 0
                        for dy in 0 ..< factor {
                            let base = (oy * factor + dy) * stride + ox * factor * c + k
                            for dx in 0 ..< factor { sum += Int(src[base + dx * c]) }
                        }
                        dst[(row + oy) * rowBytes + (toColumn + ox) * c + k] = UInt8((sum + area / 2) / area)
                    }
                }
            }
        }
    }

    /// Writes the tile at `column` of this band as tile row `bandRow` of the level.
    func writeTile(column: Int, bandRow: Int) throws {
        guard let file else { return }
        let t = tileSize, c = channels
        var tile = [UInt8](repeating: 255, count: t * t * c)
        buffer.withUnsafeBufferPointer { src in
            for y in 0 ..< t {
                let s = y * rowBytes + column * t * c
                for i in 0 ..< t * c { tile[y * t * c + i] = src[s + i] }
            }
        }
        let index = TIFFComputeTile(file.tif, UInt32(column * t), UInt32(bandRow * t), 0, 0)
        let written = tile.withUnsafeMutableBytes { TIFFWriteEncodedTile(file.tif, index, $0.baseAddress, tmsize_t($0.count)) }
        guard written >= 0 else { throw file.error("cannot write tile (\(column), \(bandRow)) of level \(level)") }
    }

    func reset() {
        buffer.withUnsafeMutableBufferPointer { $0.initialize(repeating: 255) }
    }
}
