import Foundation
import SlideIO
import TestSupport
import Testing

/// The real slides in `../shared/data/slides` (skipped with a message where that folder is absent).
@Suite(.enabled(if: SharedData.file("slides/openslide") != nil, "../shared/data/slides is absent: real-slide tests skipped"))
struct RealSlideTests {
    @Test func tcgaAperioHasTwoLevelsAndNoMPP() throws {
        let slide = try Slide(path: #require(SharedData.file("slides/openslide/tcga-cr-7395-01a-01-ts1.svs")))
        #expect(slide.vendor == "aperio")
        #expect(slide.levels.count == 2)
        #expect(slide.levels[0] == SlideLevel(width: 4443, height: 3567, downsample: 1))
        #expect(abs(slide.levels[1].downsample - 2.0005) < 1e-3)
        #expect(slide.mpp == .unknown)
        #expect(slide.objectivePower == nil)
        // JPEG 2000 tiles decode: the centre of this H&E section is not blank background.
        let patch = try slide.readRegion(SlideRegion(level0X: 2000, level0Y: 1500, level: 0, width: 64, height: 64))
        #expect(patch.pixels.contains { $0 < 200 })
    }

    @Test func hamamatsuNDPIHasSevenLevelsAndMPP() throws {
        let slide = try Slide(path: #require(SharedData.file("slides/openslide/hamamatsu-test3-DAPI-2-387.ndpi")))
        #expect(slide.vendor == "hamamatsu")
        #expect(slide.levels.count == 7)
        #expect(slide.levels.map(\.downsample) == [1, 2, 4, 8, 16, 32, 64])
        #expect(slide.mpp.source == .openslide)
        #expect(abs(try #require(slide.mpp.x) - 0.22818) < 1e-5)
        #expect(abs(try #require(slide.mpp.y) - 0.22818) < 1e-5)
        #expect(slide.objectivePower == 40)
        #expect(slide.associatedImages.map(\.name).contains("macro"))
    }

    @Test func tinyAperioOpensAndReadsWithWhiteBeyondItsEdge() throws {
        let slide = try Slide(path: #require(SharedData.file("slides/openslide/openslide-python-small.svs")))
        #expect(slide.levels == [SlideLevel(width: 16, height: 16, downsample: 1)])
        let region = try slide.readRegion(SlideRegion(level0X: 0, level0Y: 0, level: 0, width: 32, height: 32))
        #expect(region.width == 32 && region.height == 32)
        #expect(region.pixel(x: 4, y: 4) != [255, 255, 255])      // real tissue inside the 16 x 16 crop
        #expect(region.pixel(x: 20, y: 20) == [255, 255, 255])    // beyond the slide: white
        let thumb = try slide.thumbnail(maxSize: 8)
        #expect(thumb.width == 8 && thumb.height == 8)
    }

    @Test func strippedTIFFIsRejectedClearly() throws {
        let path = try #require(SharedData.file("slides/rejected/stripped-kidney-48-5.tif"))
        #expect(Slide.detectVendor(path: path) == nil)
        let error = try #require(throws: SlideError.self) { try Slide(path: path) }
        #expect(error.kind == .unsupportedFormat)
        #expect(error.description.hasPrefix(path))
        #expect(error.description.contains("tiled"))
    }

    @Test func missingFileNamesThePath() throws {
        let error = try #require(throws: SlideError.self) { try Slide(path: "/nonexistent/slide.svs") }
        #expect(error.kind == .missingFile)
        #expect(error.description.contains("/nonexistent/slide.svs"))
    }
}
