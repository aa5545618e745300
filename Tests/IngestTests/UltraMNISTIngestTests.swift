import Foundation
import GRDB
@testable import PatchIndex
import SlideIO
import TestSupport
import Testing
@testable import Ingest
@testable import UltraMNIST

/// UltraMNIST output goes through ingest like any slide and reads back pixel for pixel.
struct UltraMNISTIngestTests {
    @Test(arguments: ["patchgd", "kaggle"])
    func generateIngestAndReadBack(preset: String) throws {
        let dir = TemporaryDirectory()
        try FakeMNIST.write(to: dir.file("mnist"))
        let recipe = try #require(UltraMNISTRecipe.presets[preset])
        let counts = preset == "kaggle" ? SplitCounts(train: 2, val: 1, test: 0, totals: true) : SplitCounts(train: 1, val: 1, test: 1)
        let job = UltraMNISTJob(recipe: recipe, counts: counts, seed: 1)
        try UltraMNISTGenerator.run(job: job, mnistDirectory: dir.file("mnist"), outDirectory: dir.file("um"), workers: 2) { _ in }
        let request = IngestRequest(slidesDirectory: dir.file("um/images"), manifestPath: dir.file("um/manifest.csv"),
                                    databasePath: dir.file("index.sqlite"), dataset: preset, settings: try IngestSettings.preset("ultramnist"))
        let summary = try IngestStage.run(request, log: { _ in }, progress: { _, _, _ in })
        let images = preset == "kaggle" ? 3 : 30
        let perImage = Int((Double(recipe.size) / 128).rounded(.up)) * Int((Double(recipe.size) / 128).rounded(.up))
        #expect(summary.slides.done == images && summary.failures.isEmpty)
        #expect(summary.patches == images * perImage)

        // Labels and splits come from the manifest; a patch read through OpenSlide equals the renderer's pixels.
        let index = try PatchIndex(path: dir.file("index.sqlite"))
        let rows = try index.writer.read { db in
            try Row.fetchAll(db, sql: "SELECT s.id, s.slide_key, l.label, sp.split FROM slides s JOIN slide_labels l ON l.slide_id = s.id JOIN splits sp ON sp.slide_id = s.id")
        }
        #expect(rows.count == images)
        let (train, test) = (try MNISTSet.load(directory: dir.file("mnist"), part: .train), try MNISTSet.load(directory: dir.file("mnist"), part: .test))
        let layouts = Dictionary(uniqueKeysWithValues: try UltraMNISTGenerator.layouts(job: job, train: train, test: test).map { ($0.id, $0) })
        for row in rows.prefix(3) {
            let layout = try #require(layouts[row["slide_key"]])
            #expect(layout.label == row["label"] && layout.split == row["split"])
            let patches = try index.patches(slideID: row["id"], tilingID: summary.tilingID)
            let digit = try #require(layout.digits.max { $0.side < $1.side })
            let patch = try #require(patches.first { $0.level0X <= digit.x + digit.side / 2 && digit.x + digit.side / 2 < $0.level0X + 128
                                                      && $0.level0Y <= digit.y + digit.side / 2 && digit.y + digit.side / 2 < $0.level0Y + 128 })
            let slide = try Slide(path: dir.file("um/images/\(layout.id).tiff"))
            let read = try slide.readRegion(SlideRegion(level0X: patch.level0X, level0Y: patch.level0Y, level: 0, width: 128, height: 128))
            var expected = [UInt8](repeating: 0, count: 128 * 128)
            let renderer = UltraMNISTRenderer(mnist: layout.split == "train" ? train : test)
            expected.withUnsafeMutableBufferPointer {
                renderer.render(layout, x: patch.level0X, y: patch.level0Y, width: 128, height: 128, into: $0.baseAddress!, stride: 128)
            }
            #expect(read.converted(toChannels: 1).pixels == expected)
        }
    }
}
