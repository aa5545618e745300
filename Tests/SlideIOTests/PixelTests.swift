import SlideIO
import Testing

struct PixelTests {
    /// (premultiplied ARGB word, expected RGB)
    static let cases: [(UInt32, [UInt8])] = [
        (0xFF10_2030, [0x10, 0x20, 0x30]),   // opaque: unchanged
        (0x0000_0000, [255, 255, 255]),      // transparent: white background
        (0x0012_3456, [255, 255, 255]),      // transparent whatever the colour words say
        (0x8040_2000, [128, 64, 0]),         // half alpha: doubled (0x40*255/128 = 127.5 -> 128)
        (0x4040_4040, [255, 255, 255]),      // colour == alpha: full intensity
        (0x0101_0000, [255, 0, 0]),          // tiny alpha
    ]

    @Test(arguments: cases)
    func unpremultiply(word: UInt32, expected: [UInt8]) {
        var rgb = [UInt8](repeating: 0, count: 3)
        rgb.withUnsafeMutableBufferPointer { out in
            [word].withUnsafeBufferPointer { Pixels.unpremultiply(rgb: out, argb: $0) }
        }
        #expect(rgb == expected)
    }

    @Test func mppFromOpenSlideWinsOverTIFFResolution() {
        let mpp = MicronsPerPixel.from(properties: ["openslide.mpp-x": "0.25", "openslide.mpp-y": "0.26", "tiff.XResolution": "1000"])
        #expect(mpp == MicronsPerPixel(x: 0.25, y: 0.26, source: .openslide))
    }

    @Test(arguments: [
        (["tiff.XResolution": "20000", "tiff.YResolution": "20000", "tiff.ResolutionUnit": "centimeter"], 0.5 as Double?),
        (["tiff.XResolution": "50800", "tiff.ResolutionUnit": "inch"], 0.5),
        (["tiff.XResolution": "50800"], 0.5),                                 // absent unit: TIFF's default, inch
        (["tiff.XResolution": "20000", "tiff.ResolutionUnit": "none"], nil),  // no physical unit: unknown
        (["tiff.ResolutionUnit": "inch"], nil),                               // unit without resolution (the TCGA slide)
        (["tiff.XResolution": "0", "tiff.ResolutionUnit": "inch"], nil),
        ([:], nil),
    ])
    func mppFromTIFFResolution(properties: [String: String], expected: Double?) {
        let mpp = MicronsPerPixel.from(properties: properties)
        if let expected {
            #expect(mpp.source == .tiffResolution)
            #expect(abs((mpp.x ?? 0) - expected) < 1e-9)
        } else {
            #expect(mpp == .unknown)
        }
    }

    @Test func areaResizeAveragesBoxes() {
        let src = Raster(width: 4, height: 2, channels: 1, pixels: [0, 10, 20, 30, 40, 50, 60, 70])
        let out = Resample.area(src, width: 2, height: 1)
        #expect(out.pixels == [25, 45])
        #expect(Resample.boxEdges(source: 10, target: 3) == [0, 3, 6, 10])
        #expect(Resample.boxEdges(source: 2, target: 4) == [0, 1, 1, 1, 2].enumerated().map { max($0.element, min(2, $0.offset)) })
    }

    @Test func bilinearIdentityAndConstant() {
        let src = Raster(width: 3, height: 3, channels: 3, pixels: (0 ..< 27).map { UInt8($0 * 9) })
        #expect(Resample.bilinear(src, width: 3, height: 3) == src)
        let flat = Raster(width: 5, height: 4, channels: 1, fill: 77)
        #expect(Resample.bilinear(flat, width: 13, height: 2).pixels.allSatisfy { $0 == 77 })
    }
}
