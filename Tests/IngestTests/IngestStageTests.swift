import Foundation
import GRDB
import Manifests
@testable import PatchIndex
import SlideIO
import TestSupport
import Testing
@testable import Ingest

/// Builds a folder of synthetic slides and runs the stage in-process.
struct IngestFixture {
    let dir = TemporaryDirectory()
    var slides: String { dir.file("slides") }
    var db: String { dir.file("index.sqlite") }
    static let blobsA = [Blob(centerX: 1200, centerY: 900, radiusX: 600, radiusY: 400)]
    static let blobsB = [Blob(centerX: 700, centerY: 700, radiusX: 300, radiusY: 300), Blob(centerX: 2300, centerY: 1500, radiusX: 250, radiusY: 500)]

    init() throws {
        try FileManager.default.createDirectory(atPath: dir.file("slides/sub"), withIntermediateDirectories: true)
        try SyntheticSlide.panda(width: 3000, height: 2000, blobs: Self.blobsA).write(to: dir.file("slides/a.tiff"))
        try SyntheticSlide(width: 3000, height: 2200, blobs: Self.blobsB).write(to: dir.file("slides/sub/b.tiff"))   // no mpp
        try SyntheticSlide.panda(width: 2000, height: 2000, blobs: []).write(to: dir.file("slides/blank.tiff"))
    }

    func run(_ settings: IngestSettings = IngestSettings(), manifest: String? = nil, qc: Bool = false, slides: String? = nil,
             retryFailed: Bool = false) throws -> IngestSummary {
        let request = IngestRequest(slidesDirectory: slides ?? self.slides, manifestPath: manifest, databasePath: db, dataset: "test",
                                    settings: settings, workers: 2, qcDirectory: qc ? dir.file("qc") : nil, retryFailed: retryFailed)
        return try IngestStage.run(request, log: { _ in }, progress: { _, _, _ in })
    }

    func patches(_ key: String, tiling: Int64 = 1) throws -> [PatchRecord] {
        let index = try PatchIndex(path: db)
        let id = try #require(try index.slideID(datasetID: index.datasetID(named: "test"), slideKey: key))
        return try index.patches(slideID: id, tilingID: tiling)
    }
}

struct IngestStageTests {
    @Test func syntheticSlidesWithKnownTissue() throws {
        let f = try IngestFixture()
        let summary = try f.run(qc: true)
        #expect(summary.slides == .init(done: 2, empty: 1, failed: 0, skipped: 0))
        #expect(summary.failures.isEmpty)
        for (key, blobs) in [("a", IngestFixture.blobsA), ("sub/b", IngestFixture.blobsB)] {
            let patches = try f.patches(key)
            #expect(!patches.isEmpty)
            for p in patches {
                #expect(p.level0X == p.gridCol * 256 && p.level0Y == p.gridRow * 256 && p.level == 0 && p.readSize == 256)
                #expect(p.tissueFraction >= 0.5)
                // Every kept patch overlaps a blob; the patch at each blob centre is kept.
                let overlaps = blobs.contains { b in
                    Double(p.level0X) < b.centerX + b.radiusX && Double(p.level0X + 256) > b.centerX - b.radiusX
                        && Double(p.level0Y) < b.centerY + b.radiusY && Double(p.level0Y + 256) > b.centerY - b.radiusY
                }
                #expect(overlaps, "\(key) patch at (\(p.level0X), \(p.level0Y)) is off the tissue")
            }
            for b in blobs {
                #expect(patches.contains { $0.gridCol == Int(b.centerX) / 256 && $0.gridRow == Int(b.centerY) / 256 })
            }
            // The grid covers the blob: patches fully inside a blob are all there.
            let inside = blobs.reduce(0) { total, b in
                var n = 0
                for row in 0 ..< 10 { for col in 0 ..< 12 {
                    let corners = [(col * 256, row * 256), (col * 256 + 256, row * 256), (col * 256, row * 256 + 256), (col * 256 + 256, row * 256 + 256)]
                    if corners.allSatisfy({ b.contains(x: Double($0.0), y: Double($0.1)) }) { n += 1 }
                } }
                return total + n
            }
            #expect(patches.count >= inside)
        }
        #expect(try f.patches("blank").isEmpty)
        let index = try PatchIndex(path: f.db)
        let status = try index.slideStatus(datasetID: index.datasetID(named: "test"), slideKey: "blank", tilingID: 1)
        #expect(status?.status == "empty")
        for name in ["a.jpg", "sub_b.jpg", "blank.jpg"] { #expect(FileManager.default.fileExists(atPath: f.dir.file("qc/\(name)"))) }
    }

    @Test func rerunSkipsDoneSlidesAndNewParametersMakeANewTiling() throws {
        let f = try IngestFixture()
        _ = try f.run()
        let before = try f.patches("a")
        let again = try f.run()
        #expect(again.slides == .init(done: 0, empty: 0, failed: 0, skipped: 3))
        #expect(try f.patches("a") == before)

        var coarser = IngestSettings()
        coarser.level = 1
        coarser.minTissue = 0.3
        let second = try f.run(coarser)
        #expect(second.tilingID == 2 && second.slides.done == 2)
        #expect(try f.patches("a", tiling: 1) == before)                  // the old tiling is untouched
        #expect(try f.patches("a", tiling: 2).allSatisfy { $0.level == 1 })

        // A changed file is redone (its patches replaced, not duplicated).
        try SyntheticSlide.panda(width: 3000, height: 2000, blobs: IngestFixture.blobsB).write(to: f.dir.file("slides/a.tiff"))
        let changed = try f.run()
        #expect(changed.slides == .init(done: 1, empty: 0, failed: 0, skipped: 2))
        #expect(try f.patches("a") != before)
        #expect(try f.patches("a", tiling: 2).isEmpty)   // stale under every tiling until that tiling runs again
    }

    @Test func mppBasedGridFromResolutionTags() throws {
        let f = try IngestFixture()
        var s = IngestSettings()
        s.mpp = 1.944   // slide a: 0.486 um/px -> downsample 4 = level 1 exactly
        s.minTissue = 0.2  // a 1024 x 1024 level-0 patch is larger than half the blob
        let summary = try f.run(s, slides: nil)
        // slide b has no mpp: it fails with the advice to use --level; a (and blank) are tiled at level 1.
        #expect(summary.slides == .init(done: 1, empty: 1, failed: 1, skipped: 0), "\(summary.table)")
        #expect(summary.failures.first?.error.contains("--level") == true)
        #expect(try f.patches("a").allSatisfy { $0.level == 1 && $0.readSize == 256 })
    }

    @Test func manifestRowsWithProblemsAreReportedAndTheRestGoesOn() throws {
        let f = try IngestFixture()
        let manifest = f.dir.file("manifest.csv")
        try """
            slide,label,split,fold,patient
            slides/a.tiff,1,train,0,p1
            slides/missing.tiff,0,train,1,p2
            b.tiff,2,val,,p3
            blank.tiff,9,test,,p4
            """.write(toFile: manifest, atomically: true, encoding: .utf8)
        var s = IngestSettings()
        s.classes = 3
        let summary = try f.run(s, manifest: manifest)
        #expect(summary.slides.done == 2 && summary.slides.failed == 2)
        #expect(Set(summary.failures.map(\.slide)) == ["\(manifest):3", "\(manifest):5"])
        #expect(summary.failures.contains { $0.error.contains("missing.tiff not found") })
        #expect(summary.failures.contains { $0.error.contains("label 9 is outside") })
        let index = try PatchIndex(path: f.db)
        let rows = try index.writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.slide_key, l.label, l.fields, sp.split, sp.fold FROM slides s
                JOIN slide_labels l ON l.slide_id = s.id LEFT JOIN splits sp ON sp.slide_id = s.id ORDER BY s.slide_key
                """)
        }
        #expect(rows.map { $0["slide_key"] as String } == ["a", "b"])     // b found by name in the slide folder's subfolder
        #expect(rows.map { $0["label"] as Int } == [1, 2])
        #expect(rows.map { $0["split"] as String } == ["train", "val"])
        #expect((rows[0]["fields"] as String).contains("\"patient\":\"p1\""))
    }

    /// A truncated slide (tile data cut off) fails with OpenSlide's reason; the others complete in the same run.
    @Test func truncatedSlideFailsAndTheOthersComplete() throws {
        let f = try IngestFixture()
        let path = f.dir.file("slides/truncated.tiff")
        try SyntheticSlide(width: 3000, height: 3000, blobs: [Blob(centerX: 1500, centerY: 1500, radiusX: 1400, radiusY: 1400)],
                           options: .init(compression: .deflate, levelCount: 1)).write(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        var damaged = data
        for i in 64 ..< data.count * 2 / 3 { damaged[i] = 0 }   // tile data zeroed; directory at the end survives
        try damaged.write(to: URL(fileURLWithPath: path))
        let summary = try f.run()
        #expect(summary.slides.failed == 1 && summary.slides.done == 2 && summary.slides.empty == 1)
        #expect(summary.failures.first?.slide == path)
        #expect(summary.failures.first?.error.isEmpty == false)
        #expect(summary.failures.first?.error.contains("\n") == false)
    }

    /// QC pictures of real slides: a 2048 px JPEG under 500 KB that decodes to the same size; --qc-size makes them
    /// smaller; PNG stays available (lossless, libpng's filtering).
    @Test(.enabled(if: SharedData.file("slides/openslide") != nil, "../shared/data/slides is absent"))
    func qcPicturesOfRealSlidesAreSmall() throws {
        let slide = try #require(SharedData.file("slides/openslide/tcga-cr-7395-01a-01-ts1.svs"))
        let dir = TemporaryDirectory()
        let settings = IngestSettings()
        let jpeg = QCOutput(path: dir.file("a.jpg"), format: .jpeg, maxSize: nil)
        _ = try SlideIngester.process(path: slide, settings: settings, qc: jpeg)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: jpeg.path)[.size] as? Int)
        let picture = try ImageFile.read(jpeg.path)
        #expect(max(picture.width, picture.height) == 2048 && size < 500_000, "\(picture.width) x \(picture.height), \(size) bytes")
        _ = try SlideIngester.process(path: slide, settings: settings, qc: QCOutput(path: dir.file("b.jpg"), format: .jpeg, maxSize: 512))
        let small = try ImageFile.read(dir.file("b.jpg"))
        #expect(max(small.width, small.height) == 512 && small.width * picture.height / max(1, picture.width) - small.height <= 1)
        _ = try SlideIngester.process(path: slide, settings: settings, qc: QCOutput(path: dir.file("c.png"), format: .png, maxSize: 512))
        #expect(try ImageFile.read(dir.file("c.png")).width == small.width)
    }

    @Test(.enabled(if: SharedData.file("slides/openslide") != nil, "../shared/data/slides is absent"))
    func realSlidesWithTheRejectedOneInTheSameRun() throws {
        let f = try IngestFixture()
        let summary = try f.run(slides: SharedData.file("slides"))
        #expect(summary.slides.failed == 1)
        #expect(summary.slides.done + summary.slides.empty == 3)
        let failure = try #require(summary.failures.first)
        #expect(failure.slide.hasSuffix("rejected/stripped-kidney-48-5.tif"))
        #expect(failure.error.contains("not a file that OpenSlide can recognize"))
        #expect(try f.patches("openslide/tcga-cr-7395-01a-01-ts1").count > 50)
        let index = try PatchIndex(path: f.db)
        let status = try index.slideStatus(datasetID: index.datasetID(named: "test"), slideKey: "rejected/stripped-kidney-48-5", tilingID: 1)
        #expect(status?.status == "failed" && status?.error?.contains("OpenSlide") == true)
    }
}

/// Kills a real `gigapatch-ingest` process mid-run (fault-injection hook) and checks what a re-run does.
struct CrashRecoveryTests {
    static var binary: String? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let path = dir.appendingPathComponent("gigapatch-ingest").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    static func ingest(_ f: IngestFixture, killAt: String?) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(binary, "build gigapatch-ingest first (scripts/test does)"))
        process.arguments = ["--slides", f.slides, "--db", f.db, "--dataset", "test", "--workers", "1"]
        var env = ProcessInfo.processInfo.environment
        env[IngestStage.faultInjectionVariable] = killAt
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process
    }

    @Test func killedMidRunThenRerun() throws {
        let f = try IngestFixture()
        // Slides run in key order with one worker: a, blank, sub/b. Die while on "blank".
        let killed = try Self.ingest(f, killAt: "blank")
        #expect(killed.terminationReason == .uncaughtSignal && killed.terminationStatus == SIGKILL)
        let index = try PatchIndex(path: f.db)
        let dataset = try index.datasetID(named: "test")
        #expect(try index.slideStatus(datasetID: dataset, slideKey: "a", tilingID: 1)?.status == "done")
        #expect(try index.slideStatus(datasetID: dataset, slideKey: "blank", tilingID: 1)?.status == "running")
        let doneBefore = try f.patches("a")

        let rerun = try Self.ingest(f, killAt: nil)
        #expect(rerun.terminationStatus == 0)
        #expect(try f.patches("a") == doneBefore)                                  // completed slide untouched (same rows, same ids)
        #expect(try index.slideStatus(datasetID: dataset, slideKey: "blank", tilingID: 1)?.status == "empty")  // redone
        #expect(try index.slideStatus(datasetID: dataset, slideKey: "sub/b", tilingID: 1)?.status == "done")
        let duplicates = try index.writer.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) - count(DISTINCT tiling_id || '/' || slide_id || '/' || grid_row || '/' || grid_col) FROM patches")
        }
        #expect(duplicates == 0)
    }

    @Test func aSlideThatKillsTheProcessTwiceIsMarkedFailed() throws {
        let f = try IngestFixture()
        _ = try Self.ingest(f, killAt: "blank")
        _ = try Self.ingest(f, killAt: "blank")
        let third = try Self.ingest(f, killAt: nil)
        #expect(third.terminationStatus == 1)
        let index = try PatchIndex(path: f.db)
        let status = try index.slideStatus(datasetID: index.datasetID(named: "test"), slideKey: "blank", tilingID: 1)
        #expect(status?.status == "failed" && status?.error?.contains("died 2 times") == true)
        #expect(try index.slideStatus(datasetID: index.datasetID(named: "test"), slideKey: "sub/b", tilingID: 1)?.status == "done")
    }
}
