import Foundation
import GigapatchCLI
import SlideIO
import TestSupport
import Testing

/// Collects what a command prints.
final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var lines: [String] = []
    private(set) var diagnostics: [String] = []

    var output: Output {
        Output(line: { text in self.lock.withLock { self.lines.append(text) } },
               diagnostic: { text in self.lock.withLock { self.diagnostics.append(text) } })
    }
}

struct InspectTests {
    @Test func jsonReportsEverySlideAndAnErrorLineForBadOnes() throws {
        let dir = TemporaryDirectory()
        let good = dir.file("good.tiff")
        try SyntheticSlide.panda(width: 1024, height: 768, blobs: [Blob(centerX: 500, centerY: 400, radiusX: 200, radiusY: 100)]).write(to: good)
        let bad = dir.file("not-a-slide.tif")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: bad))
        let captured = Captured()
        let failures = InspectCommand.run(paths: [bad, good, dir.file("missing.svs")], json: true, output: captured.output)
        #expect(failures == 2)
        #expect(captured.lines.count == 3)
        #expect(captured.diagnostics.count == 2)
        #expect(captured.diagnostics.allSatisfy { $0.hasPrefix("gigapatch-inspect: ") && !$0.contains("\n") })

        let objects = try captured.lines.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        #expect(objects[0]["path"] as? String == bad)
        #expect((objects[0]["error"] as? String)?.contains("OpenSlide") == true)
        let report = objects[1]
        #expect(report["vendor"] as? String == "generic-tiff")
        let levels = try #require(report["levels"] as? [[String: Any]])
        #expect(levels.map { $0["width"] as? Int } == [1024, 256, 64])
        #expect(levels.map { $0["downsample"] as? Double } == [1, 4, 16])
        let mpp = try #require(report["mpp"] as? [String: Any])
        #expect(mpp["source"] as? String == "tiff-resolution")
        #expect(abs((mpp["x"] as? Double ?? 0) - 0.486) < 1e-4)
        #expect(report["objectivePower"] is NSNull)   // unknown is null, not omitted
        #expect(report["associatedImages"] is [Any])
        #expect((report["properties"] as? [String: String])?["openslide.vendor"] == "generic-tiff")
        #expect((objects[2]["error"] as? String)?.contains("missing file") == true)
    }

    @Test func unknownMPPIsNullWithSourceUnknown() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("nompp.tiff")
        try SyntheticSlide(width: 300, height: 300, blobs: []).write(to: path)
        let captured = Captured()
        #expect(InspectCommand.run(paths: [path], json: true, output: captured.output) == 0)
        let line = try #require(captured.lines.first)
        #expect(line.contains(#""mpp":{"source":"unknown","x":null,"y":null}"#))
        let human = Captured()
        _ = InspectCommand.run(paths: [path], json: false, output: human.output)
        #expect(human.lines.first?.contains("microns per pixel: unknown") == true)
    }
}
