import Foundation
import SlideIO
import Testing
@testable import Ingest

struct GridPlanTests {
    static let panda = [SlideLevel(width: 30000, height: 40000, downsample: 1), SlideLevel(width: 7500, height: 10000, downsample: 4),
                        SlideLevel(width: 1875, height: 2500, downsample: 16)]

    @Test func byLevel() throws {
        var s = IngestSettings()
        s.level = 1
        let g = try GridPlan.make(levels: Self.panda, mpp: .unknown, settings: s)
        #expect(g.readLevel == 1 && g.readSize == 256 && g.extent0 == 1024 && g.step0 == 1024)
        #expect(g.cols == 30 && g.rows == 40)   // 30000 / 1024 = 29.3 -> 30: the edge column is kept
        #expect(g.origin(row: 2, col: 3) == (3072, 2048))
        s.level = 3
        #expect(throws: IngestError.self) { try GridPlan.make(levels: Self.panda, mpp: .unknown, settings: s) }
    }

    @Test func byMicronsPerPixelFromTIFFTags() throws {
        let mpp = MicronsPerPixel.from(properties: ["tiff.XResolution": "20000", "tiff.YResolution": "20000", "tiff.ResolutionUnit": "centimeter"])
        #expect(mpp.x == 0.5 && mpp.source == .tiffResolution)
        var s = IngestSettings()
        s.mpp = 2.0                         // downsample 4: exactly level 1
        var g = try GridPlan.make(levels: Self.panda, mpp: mpp, settings: s)
        #expect(g.readLevel == 1 && g.readSize == 256 && g.extent0 == 1024)
        s.mpp = 1.0                         // downsample 2: nearest finer level is 0, read 512 px and resample
        g = try GridPlan.make(levels: Self.panda, mpp: mpp, settings: s)
        #expect(g.readLevel == 0 && g.readSize == 512 && g.extent0 == 512)
        s.mpp = 4.0; s.stride = 128         // downsample 8 from level 1 (4): read 512, step 1024 level-0 px
        g = try GridPlan.make(levels: Self.panda, mpp: mpp, settings: s)
        #expect(g.readLevel == 1 && g.readSize == 512 && g.step0 == 1024 && g.extent0 == 2048)
        let error = try #require(throws: IngestError.self) { try GridPlan.make(levels: Self.panda, mpp: .unknown, settings: s) }
        #expect(error.message.contains("--level"))
    }

    @Test func presetsLoadAndExplainThemselves() throws {
        #expect(Set(IngestSettings.presetNames).isSuperset(of: ["default", "panda", "ultramnist"]))
        let panda = try IngestSettings.preset("panda")
        #expect(panda.mpp == 1.0 && panda.minTissue == 0.25 && panda.classes == 6 && panda.tissue.minRegionAreaMicrons == 5000)
        #expect(panda.why?.contains("biops") == true)
        let ultra = try IngestSettings.preset("ultramnist")
        #expect(ultra.tissue.method == "none" && ultra.tissue.medianKernel == 7)   // unnamed keys keep their defaults
        #expect(try IngestSettings.preset("default").why != nil)
        #expect(throws: IngestError.self) { try IngestSettings.preset("nope") }
        #expect(panda.tilingKey != ultra.tilingKey)
        var copy = panda
        copy.why = "other words"
        #expect(copy.tilingKey == panda.tilingKey)   // documentation does not make a new tiling
    }
}
