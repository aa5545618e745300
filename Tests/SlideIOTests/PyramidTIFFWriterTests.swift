import Foundation
import SlideIO
import TestSupport
import Testing

struct PyramidTIFFWriterTests {
    static let blobs = [Blob(centerX: 300, centerY: 200, radiusX: 180, radiusY: 120),
                        Blob(centerX: 900, centerY: 600, radiusX: 90, radiusY: 150)]

    /// Level 0 as the synthetic slide defines it, for comparison with what OpenSlide reads.
    static func expectedLevel0(width: Int, height: Int, blobs: [Blob]) -> Raster {
        var raster = Raster(width: width, height: height, channels: 3)
        for y in 0 ..< height {
            for x in 0 ..< width {
                let (r, g, b) = SyntheticSlide.expectedPixel(x: x, y: y, blobs: blobs)
                let o = (y * width + x) * 3
                raster.pixels[o] = r; raster.pixels[o + 1] = g; raster.pixels[o + 2] = b
            }
        }
        return raster
    }

    /// Box reduction by an integer factor (floor sizes), the writer's definition of the next level.
    static func reduce(_ source: Raster, by factor: Int) -> Raster {
        let w = source.width / factor, h = source.height / factor
        return Resample.area(source, xEdges: (0 ... w).map { $0 * factor }[...], yEdges: (0 ... h).map { $0 * factor }[...])
    }

    /// Where two rasters first differ and how many samples do, nil when equal (keeps failure output short).
    static func firstDifference(_ a: Raster, _ b: Raster) -> String? {
        guard a.width == b.width, a.height == b.height, a.channels == b.channels else {
            return "shape \(a.width)x\(a.height)x\(a.channels) vs \(b.width)x\(b.height)x\(b.channels)"
        }
        guard let first = a.pixels.indices.first(where: { a.pixels[$0] != b.pixels[$0] }) else { return nil }
        let count = a.pixels.indices.filter { a.pixels[$0] != b.pixels[$0] }.count
        let p = first / a.channels
        return "\(count) samples differ; first at (\(p % a.width), \(p / a.width)): \(Array(a.pixel(x: p % a.width, y: p / a.width))) vs \(Array(b.pixel(x: p % a.width, y: p / a.width)))"
    }

    @Test func deflateRoundTripsLevelsPixelsAndMPP() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("synthetic.tiff")
        let (w, h) = (1100, 777)
        var options = PyramidTIFFOptions(compression: .deflate, downsamplePerLevel: 2, micronsPerPixel: 0.25)
        options.tileSize = 256
        try SyntheticSlide(width: w, height: h, blobs: Self.blobs, options: options).write(to: path)

        let slide = try Slide(path: path)
        #expect(slide.vendor == "generic-tiff")
        let sizes = PyramidTIFFWriter.levelSizes(width: w, height: h, options: options)
        #expect(sizes.map(\.width) == [1100, 550, 275, 137])
        #expect(slide.levels.map(\.width) == sizes.map(\.width))
        #expect(slide.levels.map(\.height) == sizes.map(\.height))
        #expect(abs(slide.levels[1].downsample - 2) < 0.01 && abs(slide.levels[3].downsample - 8) < 0.05)
        #expect(slide.mpp.source == .tiffResolution)
        #expect(abs(try #require(slide.mpp.x) - 0.25) < 1e-4)

        // Level 0 is exact; each reduced level is the exact box average of the level above.
        var expected = Self.expectedLevel0(width: w, height: h, blobs: Self.blobs)
        for (level, size) in sizes.enumerated() {
            if level > 0 { expected = Self.reduce(expected, by: 2) }
            let read = try slide.readRegion(SlideRegion(level0X: 0, level0Y: 0, level: level, width: size.width, height: size.height))
            let diff = Self.firstDifference(read, expected)
            #expect(diff == nil, "level \(level): \(diff ?? "")")
        }
        let dirs = try TIFFDirectoryInfo.read(path: path)
        #expect(dirs.count == 4 && dirs.allSatisfy { $0.compression == 8 })
        // Tiles never exceed their level (OpenSlide 3.4.1 + libtiff 4.5 misread such levels).
        #expect(dirs.map(\.tileWidth) == [256, 256, 256, 128])
        #expect(dirs.map(\.tileHeight) == [256, 256, 192, 96])
    }

    @Test func pandaShapedJPEGOpensWithinJPEGError() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("panda.tiff")
        let (w, h) = (1280, 960)
        try SyntheticSlide.panda(width: w, height: h, blobs: Self.blobs).write(to: path)
        let slide = try Slide(path: path)
        #expect(slide.vendor == "generic-tiff")
        #expect(slide.levels.map(\.downsample) == [1, 4, 16])
        #expect(slide.levels.map(\.width) == [1280, 320, 80])
        #expect(abs(try #require(slide.mpp.x) - 0.486) < 1e-4)
        let dirs = try TIFFDirectoryInfo.read(path: path)
        #expect(dirs.allSatisfy { $0.compression == 7 && $0.photometric == 6 })

        let expected = Self.expectedLevel0(width: w, height: h, blobs: Self.blobs)
        let read = try slide.readRegion(SlideRegion(level0X: 0, level0Y: 0, level: 0, width: w, height: h))
        var total = 0, worst = 0
        for i in 0 ..< read.pixels.count {
            let diff = abs(Int(read.pixels[i]) - Int(expected.pixels[i]))
            total += diff
            worst = max(worst, diff)
        }
        let mean = Double(total) / Double(read.pixels.count)
        #expect(mean < 2.5, "mean JPEG error \(mean)")
        #expect(worst < 100, "worst JPEG error \(worst)")
    }

    /// Every level of every compression reads back as the box reduction of level 0, including levels smaller than a tile.
    @Test(arguments: [PyramidTIFFOptions.Compression.deflate, .jpeg(quality: 95)], [1, 3])
    func everyLevelReadsBackThroughOpenSlide(compression: PyramidTIFFOptions.Compression, channels: Int) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("levels.tiff")
        let (w, h) = (700, 300)
        var slide = SyntheticSlide(width: w, height: h, blobs: [Blob(centerX: 350, centerY: 150, radiusX: 300, radiusY: 120)], channels: channels)
        slide.options = PyramidTIFFOptions(compression: compression, downsamplePerLevel: 2)
        try slide.write(to: path)
        let opened = try Slide(path: path)
        #expect(opened.levels.map(\.width) == [700, 350, 175])
        var expected = Self.expectedLevel0(width: w, height: h, blobs: slide.blobs)
        if channels == 1 { expected = expected.converted(toChannels: 1).converted(toChannels: 3) }
        for level in opened.levels.indices {
            if level > 0 { expected = Self.reduce(expected, by: 2) }
            let read = try opened.readRegion(SlideRegion(level0X: 0, level0Y: 0, level: level, width: opened.levels[level].width,
                                                          height: opened.levels[level].height))
            var worst = 0
            for i in read.pixels.indices { worst = max(worst, abs(Int(read.pixels[i]) - Int(expected.pixels[i]))) }
            let tolerance = compression == .jpeg(quality: 95) ? 80 : (channels == 1 ? 1 : 0)
            #expect(worst <= tolerance, "level \(level): worst difference \(worst)")
        }
    }

    @Test(arguments: [PyramidTIFFOptions.Compression.deflate, .jpeg(quality: 95)])
    func grayscaleOpensInOpenSlide(compression: PyramidTIFFOptions.Compression) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("gray.tiff")
        let options = PyramidTIFFOptions(compression: compression, downsamplePerLevel: 4)
        try PyramidTIFFWriter.write(to: path, width: 600, height: 400, channels: 1, options: options) { tile, pixels in
            for row in 0 ..< tile.height {
                for col in 0 ..< tile.width { pixels[row * tile.tileSize + col] = (tile.x + col) < 300 ? 0 : 200 }
            }
        }
        let slide = try Slide(path: path)
        #expect(slide.levels.map(\.width) == [600, 150])
        let read = try slide.readRegion(SlideRegion(level0X: 0, level0Y: 0, level: 0, width: 600, height: 400))
        let left = read.pixel(x: 100, y: 100), right = read.pixel(x: 500, y: 300)
        #expect(left.allSatisfy { $0 < 8 })
        #expect(right.allSatisfy { abs(Int($0) - 200) < 8 })
    }

    @Test func readsPastTheEdgeAreWhite() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("edge.tiff")
        let blob = Blob(centerX: 250, centerY: 250, radiusX: 400, radiusY: 400) // covers the whole image
        try SyntheticSlide(width: 300, height: 300, blobs: [blob]).write(to: path)
        let slide = try Slide(path: path)
        let read = try slide.readRegion(SlideRegion(level0X: 200, level0Y: 200, level: 0, width: 200, height: 200))
        #expect(read.pixel(x: 50, y: 50) != [255, 255, 255])  // inside the image: stained
        #expect(read.pixel(x: 150, y: 50) == [255, 255, 255]) // right of the edge
        #expect(read.pixel(x: 50, y: 150) == [255, 255, 255]) // below the edge
        let negative = try slide.readRegion(SlideRegion(level0X: -100, level0Y: -100, level: 0, width: 50, height: 50))
        #expect(negative.pixels.allSatisfy { $0 == 255 })
    }

    @Test func concurrentReadsAgreeWithSerialReads() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("concurrent.tiff")
        try SyntheticSlide(width: 1100, height: 777, blobs: Self.blobs, options: PyramidTIFFOptions(compression: .jpeg(quality: 80))).write(to: path)
        let slide = try Slide(path: path)
        let regions = (0 ..< 48).map { i in
            SlideRegion(level0X: (i * 97) % 900, level0Y: (i * 61) % 600, level: i % 3, width: 128, height: 96)
        }
        let serial = try regions.map { try slide.readRegion($0) }
        let results = ResultBox(count: regions.count)
        DispatchQueue.concurrentPerform(iterations: regions.count) { i in
            results.set(i, try? slide.readRegion(regions[i]))
        }
        #expect(results.values.count == serial.count)
        for i in serial.indices {
            let read = try #require(results.values[i], "concurrent read \(i) failed")
            #expect(Self.firstDifference(read, serial[i]) == nil, "region \(i)")
        }
    }

    @Test func brokenHandleIsReopenedOnTheNextRead() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("damaged.tiff")
        try SyntheticSlide(width: 2048, height: 2048, blobs: [Blob(centerX: 1024, centerY: 1024, radiusX: 1000, radiusY: 1000)],
                           options: PyramidTIFFOptions(compression: .deflate, levelCount: 1)).write(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        let slide = try Slide(path: path)
        // Destroy the tile data (keep the header and directories at the end of the file intact).
        var damaged = good
        for i in 16 ..< good.count / 2 { damaged[i] = 0xA5 }
        try damaged.write(to: URL(fileURLWithPath: path))
        let region = SlideRegion(level0X: 0, level0Y: 0, level: 0, width: 512, height: 512)
        let error = try #require(throws: SlideError.self) { try slide.readRegion(region) }
        #expect(error.kind == .openslide)
        #expect(error.region == region)
        #expect(error.description.contains(path))
        // Repaired file: the next read opens a fresh handle instead of reusing the broken one.
        try good.write(to: URL(fileURLWithPath: path))
        let read = try slide.readRegion(region)
        #expect(read.pixel(x: 450, y: 450) != [255, 255, 255])
    }

    @Test func thumbnailFitsAndShowsTheBlobs() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("thumb.tiff")
        try SyntheticSlide(width: 1100, height: 777, blobs: Self.blobs, options: PyramidTIFFOptions(levelCount: 1)).write(to: path)
        let thumb = try Slide(path: path).thumbnail(maxSize: 110)
        #expect(thumb.width == 110 && thumb.height == 78)
        #expect(thumb.pixel(x: 30, y: 20) != [255, 255, 255]) // blob 1 centre
        #expect(thumb.pixel(x: 105, y: 5) == [255, 255, 255]) // background corner
    }

    @Test func badOptionsAndFailingSourcesLeaveNoFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("bad.tiff")
        #expect(throws: TIFFError.self) {
            try PyramidTIFFWriter.write(to: path, width: 100, height: 100, channels: 3, options: PyramidTIFFOptions(tileSize: 100)) { _, _ in }
        }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try PyramidTIFFWriter.write(to: path, width: 600, height: 600, channels: 3) { tile, _ in
                if tile.y > 0 { throw Boom() }
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

/// Results written from many threads, each index once.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Raster?]

    init(count: Int) { values = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ value: Raster?) {
        lock.lock()
        values[i] = value
        lock.unlock()
    }
}
