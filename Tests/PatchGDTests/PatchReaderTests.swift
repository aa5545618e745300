import Foundation
import NN
import SlideIO
import TestSupport
import Testing
@testable import PatchGD

struct PatchReaderTests {
    static func slide(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("s.tiff")
        try SyntheticSlide(width: 1024, height: 768, blobs: [Blob(centerX: 500, centerY: 400, radiusX: 300, radiusY: 200)]).write(to: path)
        return path
    }

    /// A patch equals a direct OpenSlide read, normalised; a patch read larger is area-resampled to the patch size.
    @Test func patchesMatchDirectReadsAndResample() throws {
        let dir = TemporaryDirectory()
        let path = try Self.slide(dir)
        let reader = PatchReader(patchSize: 64, normalization: .imagenet)
        let locations = [PatchLocation(path: path, level0X: 448, level0Y: 352, level: 0, readSize: 64),
                         PatchLocation(path: path, level0X: 960, level0Y: 704, level: 0, readSize: 64),     // over the edge: white padding
                         PatchLocation(path: path, level0X: 384, level0Y: 320, level: 0, readSize: 128)]    // resampled 128 -> 64
        let t = try reader.read(locations)
        #expect(t.shape == [3, 3, 64, 64])
        let direct = try Slide(path: path).readRegion(SlideRegion(level0X: 448, level0Y: 352, level: 0, width: 64, height: 64))
        for (c, (m, s)) in zip(Normalization.imagenet.mean, Normalization.imagenet.std).enumerated() {
            for j in [0, 100, 4095] {
                #expect(abs(t.pointer[c * 4096 + j] - (Float(direct.pixels[3 * j + c]) / 255 - m) / s) < 1e-5)
            }
        }
        // The edge patch's part beyond the slide is white.
        let white = (1 - Normalization.imagenet.mean[0]) / Normalization.imagenet.std[0]
        #expect(abs(t.pointer[1 * 3 * 4096 + 63 * 64 + 63] - white) < 1e-5)
        let big = try Slide(path: path).readRegion(SlideRegion(level0X: 384, level0Y: 320, level: 0, width: 128, height: 128))
        let reduced = Resample.area(big, width: 64, height: 64)
        #expect(abs(t.pointer[2 * 3 * 4096 + 10 * 64 + 10] - (Float(reduced.pixels[3 * (10 * 64 + 10)]) / 255 - 0.485) / 0.229) < 1e-5)
    }

    @Test func cacheServesRepeatsAndStaysBounded() throws {
        let dir = TemporaryDirectory()
        let path = try Self.slide(dir)
        let reader = PatchReader(patchSize: 32, normalization: .mnist, cacheCapacity: 4)
        let locations = (0 ..< 6).map { PatchLocation(path: path, level0X: $0 * 32, level0Y: 0, level: 0, readSize: 32) }
        _ = try reader.read(Array(locations.prefix(3)))
        _ = try reader.read(Array(locations.prefix(3)))
        #expect(reader.reads == 3)
        // Only new patches here: with cached ones in the same call, a concurrent miss may evict a hit before its
        // thread reaches it (a harmless extra read, but a count that depends on timing).
        _ = try reader.read(Array(locations.suffix(3)))
        #expect(reader.reads == 6 && reader.cachedCount == 4)
        reader.prefetch([PatchLocation(path: path, level0X: 500, level0Y: 500, level: 0, readSize: 32)])
        reader.drainPrefetch()
        #expect(reader.reads == 7)
        _ = try reader.read([PatchLocation(path: path, level0X: 500, level0Y: 500, level: 0, readSize: 32)])
        #expect(reader.reads == 7)   // served by the prefetch
    }

    /// Open slides are bounded (each OpenSlide handle keeps its own tile cache): past the limit the least recently
    /// used one is closed, a slide read again is opened again, and the pixels do not change.
    @Test func openSlidesStayBoundedAndReadTheSame() throws {
        let dir = TemporaryDirectory()
        let paths = try (0 ..< 5).map { i -> String in
            let path = dir.file("s\(i).tiff")
            try SyntheticSlide(width: 96, height: 96, blobs: [Blob(centerX: 20 + Double(i) * 12, centerY: 48, radiusX: 15, radiusY: 25)]).write(to: path)
            return path
        }
        let at = { (i: Int) in PatchLocation(path: paths[i], level0X: 16, level0Y: 16, level: 0, readSize: 32) }
        let bounded = PatchReader(patchSize: 32, normalization: .mnist, cacheCapacity: 0, openSlideLimit: 2)
        let unbounded = PatchReader(patchSize: 32, normalization: .mnist, cacheCapacity: 0, openSlideLimit: 100)
        for i in [0, 1, 0, 2, 3, 0, 4, 1] {
            let a = try bounded.read([at(i)]), b = try unbounded.read([at(i)])
            #expect((0 ..< a.count).allSatisfy { a.pointer[$0] == b.pointer[$0] }, "slide \(i) reads differently after reopening")
            #expect(bounded.openSlides.now <= 2)
        }
        // 8 reads of 5 slides with room for 2: 7 opens (only the second read of 0, right after 1, finds it open).
        #expect(bounded.openSlides.opened == 7)
        #expect(unbounded.openSlides.now == 5 && unbounded.openSlides.opened == 5)
    }

    @Test func missingSlideIsNamed() throws {
        let reader = PatchReader(patchSize: 16, normalization: .mnist)
        let error = try #require(throws: SlideError.self) {
            try reader.read([PatchLocation(path: "/nonexistent/slide.tiff", level0X: 0, level0Y: 0, level: 0, readSize: 16)])
        }
        #expect(error.path == "/nonexistent/slide.tiff" && error.kind == .missingFile)
    }
}
