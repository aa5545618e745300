import Foundation
import Seeded
import SlideIO
import TestSupport
import Testing
@testable import Tissue

struct BinaryImageTests {
    static func random(width: Int, height: Int, seed: UInt64, density: Double = 0.5) -> BinaryImage {
        var rng = SplitMix64(seed: seed)
        return BinaryImage(width: width, height: height, bits: (0 ..< width * height).map { _ in Double.random(in: 0 ..< 1, using: &rng) < density ? 1 : 0 })
    }

    /// Reference kernel: the window's values, clipped at the borders.
    static func window(_ values: [UInt8], width: Int, height: Int, x: Int, y: Int, k: Int) -> [UInt8] {
        var out: [UInt8] = []
        for yy in max(0, y - k / 2) ... min(height - 1, y + k / 2) {
            for xx in max(0, x - k / 2) ... min(width - 1, x + k / 2) { out.append(values[yy * width + xx]) }
        }
        return out
    }

    /// Thresholding after a median blur equals a majority vote after thresholding (what the detector computes).
    @Test func majorityEqualsThresholdedMedian() {
        var rng = SplitMix64(seed: 4)
        let (w, h, k, t) = (23, 17, 5, 120)
        let gray = (0 ..< w * h).map { _ in UInt8.random(in: 0 ... 255, using: &rng) }
        let fast = BinaryImage(width: w, height: h, bits: gray.map { Int($0) > t ? 1 : 0 }).majority(kernel: k)
        for y in 0 ..< h {
            for x in 0 ..< w {
                let values = Self.window(gray, width: w, height: h, x: x, y: y, k: k).sorted()
                // Upper median for even windows at the border, as a majority needs more than half above t.
                let above = values.filter { Int($0) > t }.count
                #expect(fast.bits[y * w + x] == (2 * above > values.count ? 1 : 0))
                if values.count % 2 == 1 { #expect(fast.bits[y * w + x] == (Int(values[values.count / 2]) > t ? 1 : 0)) }
            }
        }
    }

    @Test func dilationAndErosionMatchNaiveKernels() {
        let image = Self.random(width: 31, height: 19, seed: 9, density: 0.3)
        for k in [3, 5] {
            let dilated = image.dilated(kernel: k), eroded = image.eroded(kernel: k)
            for y in 0 ..< 19 {
                for x in 0 ..< 31 {
                    let values = Self.window(image.bits, width: 31, height: 19, x: x, y: y, k: k)
                    #expect(dilated.bits[y * 31 + x] == values.max())
                    #expect(eroded.bits[y * 31 + x] == values.min())
                }
            }
        }
    }

    @Test func holesFilledAndSmallRegionsRemoved() {
        // A 9 x 9 ring with a 1-pixel hole and a 3 x 3 hole, plus a lone speck far away.
        var image = BinaryImage(width: 20, height: 12)
        for y in 1 ... 9 { for x in 1 ... 9 { image.bits[y * 20 + x] = 1 } }
        image.bits[2 * 20 + 2] = 0
        for y in 5 ... 7 { for x in 5 ... 7 { image.bits[y * 20 + x] = 0 } }
        image.bits[5 * 20 + 17] = 1
        let filledSmall = image.holesFilled(maxArea: 2)
        #expect(filledSmall.bits[2 * 20 + 2] == 1 && filledSmall.bits[6 * 20 + 6] == 0)
        let filledAll = image.holesFilled(maxArea: 10)
        #expect(filledAll.bits[6 * 20 + 6] == 1)
        #expect(filledAll.bits[0] == 0) // the outside touches the border: never a hole
        let cleaned = image.smallRegionsRemoved(minArea: 2)
        #expect(cleaned.bits[5 * 20 + 17] == 0 && cleaned.bits[1 * 20 + 1] == 1)
    }
}

struct TissueDetectorTests {
    @Test func otsuSplitsTwoModes() {
        let values = [UInt8](repeating: 10, count: 500) + [UInt8](repeating: 200, count: 300) + [12, 190, 15, 205]
        let t = TissueDetector.otsu(values)
        #expect(t >= 15 && t < 190)
    }

    static func write(_ slide: SyntheticSlide, _ dir: TemporaryDirectory, _ name: String) throws -> Slide {
        try slide.write(to: dir.file(name))
        return try Slide(path: dir.file(name))
    }

    static func detect(_ slide: Slide, maxSize: Int = 512, parameters: TissueParameters = TissueParameters()) throws -> TissueMask {
        let thumb = try slide.thumbnail(maxSize: maxSize)
        let (w, h) = slide.dimensions
        return TissueDetector.detect(thumbnail: thumb, downsampleX: Double(w) / Double(thumb.width), downsampleY: Double(h) / Double(thumb.height),
                                     micronsPerPixel: slide.mpp.x.map { ($0, slide.mpp.y ?? $0) }, parameters: parameters)
    }

    /// Blobs at known places are found; background is not; patch scores follow.
    @Test func findsBlobsAtKnownPlacesAndScoresPatches() throws {
        let dir = TemporaryDirectory()
        let blobs = [Blob(centerX: 1000, centerY: 800, radiusX: 500, radiusY: 300), Blob(centerX: 3000, centerY: 2200, radiusX: 300, radiusY: 600)]
        let slide = try Self.write(.panda(width: 4096, height: 3072, blobs: blobs, mpp: 0.5), dir, "blobs.tiff")
        let mask = try Self.detect(slide)
        let scale = mask.downsampleX
        func at(_ x: Double, _ y: Double) -> UInt8 { mask.mask.bits[Int(y / mask.downsampleY) * mask.mask.width + Int(x / scale)] }
        #expect(at(1000, 800) == 1 && at(3000, 2200) == 1)
        #expect(at(100, 100) == 0 && at(4000, 100) == 0 && at(2000, 2900) == 0)
        let expectedFraction = blobs.reduce(0.0) { $0 + Double.pi * $1.radiusX * $1.radiusY } / (4096 * 3072)
        #expect(abs(mask.tissueFraction - expectedFraction) < 0.01)
        let scorer = PatchScorer(mask: mask)
        #expect(scorer.scores(level0X: 872, level0Y: 672, extent: 256).tissue > 0.99)
        #expect(scorer.scores(level0X: 0, level0Y: 0, extent: 256).tissue == 0)
        #expect(scorer.scores(level0X: 0, level0Y: 0, extent: 256).whitespace > 0.99)
        // A patch hanging over the right edge: the part beyond the slide counts as background.
        #expect(scorer.scores(level0X: 3968, level0Y: 0, extent: 256).tissue == 0)
    }

    @Test func blankSlideFindsNothing() throws {
        let dir = TemporaryDirectory()
        let slide = try Self.write(.panda(width: 2048, height: 2048, blobs: []), dir, "blank.tiff")
        let mask = try Self.detect(slide)
        #expect(mask.mask.count == 0)
        #expect(!mask.darkBackground)
    }

    /// Areas are in square microns when mpp is known: a small biopsy fragment survives at a fine scan.
    @Test func areasScaleWithMicronsPerPixel() throws {
        let dir = TemporaryDirectory()
        // A fragment of 100 x 100 microns = 10000 um^2, drawn at 0.25 um/px (400 x 400 px) beside big tissue.
        let blobs = [Blob(centerX: 1000, centerY: 1000, radiusX: 200, radiusY: 200), Blob(centerX: 3000, centerY: 3000, radiusX: 800, radiusY: 800)]
        let slide = try Self.write(.panda(width: 4096, height: 4096, blobs: blobs, mpp: 0.25), dir, "fine.tiff")
        var p = TissueParameters()
        p.minRegionAreaMicrons = 5000     // the fragment (about 7850 um^2 as an ellipse) is kept
        let kept = try Self.detect(slide, parameters: p)
        p.minRegionAreaMicrons = 20000    // now it is below the limit
        let dropped = try Self.detect(slide, parameters: p)
        let fx = Int(1000 / kept.downsampleX), fy = Int(1000 / kept.downsampleY)
        #expect(kept.mask.bits[fy * kept.mask.width + fx] == 1)
        #expect(dropped.mask.bits[fy * dropped.mask.width + fx] == 0)
        #expect(dropped.mask.bits[Int(3000 / dropped.downsampleY) * dropped.mask.width + Int(3000 / dropped.downsampleX)] == 1)
    }

    @Test func darkBackgroundUsesBrightnessAndSaysSo() {
        // Black background with a dense field of bright dots in the left half (fluorescent nuclei).
        var raster = Raster(width: 200, height: 100, channels: 3, fill: 0)
        for y in stride(from: 10, to: 90, by: 3) {
            for x in stride(from: 10, to: 90, by: 3) {
                raster.pixels[(y * 200 + x) * 3 + 2] = 255
                raster.pixels[(y * 200 + x) * 3 + 1] = 80
            }
        }
        var p = TissueParameters()
        p.minRegionAreaPixels = 100
        let mask = TissueDetector.detect(thumbnail: raster, downsampleX: 1, downsampleY: 1, micronsPerPixel: nil, parameters: p)
        #expect(mask.darkBackground)
        #expect(mask.summary.contains("fluorescence"))
        #expect(mask.mask.bits[50 * 200 + 50] == 1)
        #expect(mask.mask.bits[50 * 200 + 170] == 0)
    }

    @Test func methodNoneKeepsEverything() {
        var p = TissueParameters()
        p.method = "none"
        let mask = TissueDetector.detect(thumbnail: Raster(width: 10, height: 10, channels: 3), downsampleX: 4, downsampleY: 4,
                                         micronsPerPixel: nil, parameters: p)
        #expect(mask.mask.count == 100 && mask.threshold == nil)
    }
}

struct PNGTests {
    @Test func encodesAValidPNG() throws {
        var raster = Raster(width: 3, height: 2, channels: 3, fill: 0)
        raster.pixels[0] = 255
        let data = try PNG.encode(raster)
        #expect(Array(data.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        #expect(Array(data[12 ..< 16]) == Array("IHDR".utf8))
        #expect(Array(data[16 ..< 24]) == [0, 0, 0, 3, 0, 0, 0, 2])
        #expect(data[24] == 8 && data[25] == 2)
        #expect(Array(data.suffix(12)) == [0, 0, 0, 0] + Array("IEND".utf8) + [0xAE, 0x42, 0x60, 0x82])
        #expect(try PNG.decode(data).pixels == raster.pixels)
    }

    /// PNG round-trips exactly; JPEG within its loss; a picture that is neither is refused by name.
    @Test func picturesRoundTripThroughLibpngAndLibjpeg() throws {
        var raster = Raster(width: 67, height: 41, channels: 3)
        for i in raster.pixels.indices { raster.pixels[i] = UInt8((i * 7 + i / 201 * 13) % 256 / 2 + 64) }
        let dir = TemporaryDirectory()
        try ImageFile.write(raster, to: dir.file("a.png"))
        #expect(try ImageFile.read(dir.file("a.png")).pixels == raster.pixels)
        try ImageFile.write(raster, to: dir.file("a.jpg"), jpegQuality: 95)
        let back = try ImageFile.read(dir.file("a.jpg"))
        #expect(back.width == 67 && back.height == 41)
        let error = zip(back.pixels, raster.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +) / raster.pixels.count
        #expect(error < 12, "mean JPEG error \(error)")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: dir.file("b.png")))
        #expect { try ImageFile.read(dir.file("b.png")) } throws: { "\($0)".contains("b.png") }
        #expect { try ImageFile.read(dir.file("none.png")) } throws: { "\($0)".contains("none.png") }
    }
}
