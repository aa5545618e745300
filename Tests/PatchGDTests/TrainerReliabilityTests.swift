import Foundation
import Ingest
import NN
@testable import PatchIndex
import TestSupport
import Testing
@testable import PatchGD

/// Issue 17's training and prediction defects: kills in the middle of an epoch's commit, runs left running, exit
/// statuses, options refused before anything is written.
struct TrainerReliabilityTests {
    struct Interrupted: Error {}

    /// 1, 2: killed at any step of an epoch's commit (after the metrics, between the optimizer state and the weights,
    /// right after the weights), the run resumes by itself and ends with the weights, optimizer state and metrics of
    /// one that ran through, and no temporary file is left.
    @Test(arguments: RunDirectory.CommitPoint.allCases)
    func killedDuringACommitResumesExactly(point: RunDirectory.CommitPoint) throws {
        let f = try TrainerFixture.positional(train: 6, val: 2)
        var o = f.options("straight", epochs: 3)
        let straight = try Trainer(options: o).run()

        o.out = f.dir.file("killed")
        let first = Trainer(options: o)
        first.commitFault = { at, epoch in if at == point && epoch == 2 { throw Interrupted() } }
        #expect(throws: Interrupted.self) { try first.run() }
        // What a SIGKILL in the middle of a write leaves: temporary files, removed when the run starts again.
        for leftover in ["metrics.jsonl.tmp-99999-1", "checkpoints/last.safetensors.tmp-99999"] {
            #expect(FileManager.default.createFile(atPath: o.out + "/" + leftover, contents: Data("partial".utf8)))
        }
        let resumed = try Trainer(options: o).run(resume: true)

        let a = try Safetensors.read(straight.lastCheckpoint).tensors, b = try Safetensors.read(resumed.lastCheckpoint).tensors
        #expect(a.keys.sorted() == b.keys.sorted() && a.allSatisfy { $0.value.data == b[$0.key]?.data }, "weights differ after resume")
        let ma = try Safetensors.read(Checkpoint.optimizerPath(straight.lastCheckpoint)).tensors
        let mb = try Safetensors.read(Checkpoint.optimizerPath(resumed.lastCheckpoint)).tensors
        #expect(!ma.isEmpty && ma.allSatisfy { $0.value.data == mb[$0.key]?.data }, "optimizer state differs after resume")
        let lines = try String(contentsOfFile: o.out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let epochs = try lines.map { try JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)).epoch }
        #expect(epochs == [1, 2, 3])
        #expect(resumed.epochs.map(\.trainLoss) == straight.epochs.map(\.trainLoss))
        let files = try FileManager.default.contentsOfDirectory(atPath: o.out) + FileManager.default.contentsOfDirectory(atPath: o.out + "/checkpoints")
        #expect(!files.contains { $0.contains(".tmp-") }, "\(files)")
        // One optimizer file per checkpoint: the one its weights name.
        #expect(files.filter { $0.hasSuffix(".optimizer.safetensors") }.count == 2, "\(files)")
    }

    /// 3: a run killed mid-epoch stays `running` only until the next run opens the index: it is marked interrupted.
    @Test func aKilledRunIsMarkedInterruptedByTheNext() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let f = try TrainerFixture.positional(train: 6, val: 2)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Executables.directory! + "/gigapatch-train")
        process.arguments = ["--db", f.db, "--out", f.dir.file("victim"), "--backbone", "tiny", "--latent", "8", "--head-features", "8",
                             "--epochs", "50", "--batch-size", "2", "--normalization", "mnist", "--workers", "1"]
        process.standardOutput = FileHandle.nullDevice
        let log = f.dir.file("victim.log")
        #expect(FileManager.default.createFile(atPath: log, contents: nil))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        try process.run()
        let index = try PatchIndex.existing(at: f.db)
        var runID: Int64?
        for _ in 0 ..< 400 where runID == nil {
            usleep(50_000)
            runID = try index.runID(directory: absolute(f.dir.file("victim")))
        }
        let id = try #require(runID, "the run never started: \((try? String(contentsOfFile: log, encoding: .utf8))?.prefix(300) ?? "")")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(try index.run(id: id)?.status == "running")
        _ = try Trainer(options: f.options("next", epochs: 1)).run()
        #expect(try index.run(id: id)?.status == "interrupted")
    }

    /// 7: prediction that skips a slide writes the others' rows and exits 1.
    @Test func predictionWithASkippedSlideExitsOne() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let f = try TrainerFixture.positional(train: 4, val: 3)
        let summary = try Trainer(options: f.options("run", epochs: 1)).run()
        try FileManager.default.removeItem(atPath: f.dir.file("slides/s5.tiff"))   // a val slide
        let result = try Executables.run("predict", ["--db", f.db, "--checkpoint", summary.lastCheckpoint, "--out", f.dir.file("val.csv")])
        #expect(result.status == 1, "\(result.errors)")
        #expect(result.errors.contains("s5"))
        let rows = try String(contentsOfFile: f.dir.file("val.csv"), encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 3)   // header and the two readable slides
    }

    /// 12: a bad numeric option is refused with a one-line message naming it, before the run directory is made.
    @Test(arguments: [["--head-dropout", "1.5"], ["--head-dropout", "1"], ["--head-dropout", "-0.5"], ["--lr", "nan"]])
    func badOptionsWriteNothing(option: [String]) throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let f = try TrainerFixture.positional(train: 2, val: 1)
        let result = try Executables.run("train", ["--db", f.db, "--out", f.dir.file("run"), "--backbone", "tiny"] + option)
        #expect(result.status == 1 || result.status == 64, "exit \(result.status): \(result.errors)")   // an error exit, not a crash (132)
        #expect(result.errors.contains(option[0]))
        #expect(!FileManager.default.fileExists(atPath: f.dir.file("run")))
    }

    /// 15: tissue wider than --max-grid whose bulk lies off-centre keeps the window with the most patches, not an empty
    /// centre, and the crop is reported with the slide's name.
    @Test func cropKeepsTheWindowWithTheMostPatches() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        let tiling = try index.tilingID(datasetID: dataset, spec: TilingSpec(patchSize: 16, stride: 16, level: 0, targetMPP: nil, minTissue: 0,
                                                                                tissueMethod: "none", paramsJSON: "{}"))
        guard case .process(let slideID, _) = try index.begin(datasetID: dataset, tilingID: tiling, file: SlideFile(key: "corner", path: "/x/c.tiff", size: 1, mtime: 0), retryFailed: false) else {
            Issue.record("slide not started"); return
        }
        let cells = [(0, 0), (0, 1), (1, 0), (1, 1), (20, 20)].map { PatchCell(level0X: $0.1 * 16, level0Y: $0.0 * 16, gridRow: $0.0, gridCol: $0.1, tissueFraction: 1) }
        try index.finish(slideID: slideID, tilingID: tiling, metadata: SlideMetadata(vendor: nil, width: 400, height: 400, levelCount: 1, mppX: nil, mppY: nil, mppSource: "unknown", quickHash: nil),
                         grid: GridInfo(rows: 21, cols: 21, readLevel: 0, readSize: 16), cells: cells)
        let data = try PatchDataset.load(index: index, dataset: "d", tilingID: tiling, maxGrid: 8)
        let image = data.images[0]
        #expect(image.grid.cells.count == 4 && image.rowOffset == 0 && image.colOffset == 0 && image.croppedPatches == 1)
        #expect(data.notes.count == 1 && data.notes[0].hasPrefix("corner:"))
    }

    /// 8: a validation slide labelled outside the checkpoint's classes is named and left out of every metric alike.
    @Test func labelsOutsideTheClassesAreReported() throws {
        let f = try TrainerFixture.positional(train: 4, val: 3)
        let summary = try Trainer(options: f.options("run", epochs: 1)).run()
        let index = try PatchIndex.existing(at: f.db)
        let dataset = try #require(try index.existingDatasetID(named: "test"))
        try index.setLabel(slideID: try #require(try index.slideID(datasetID: dataset, slideKey: "s5")), label: 7, fields: [:])
        var messages: [String] = []
        let result = try Predictor.run(PredictOptions(db: f.db, checkpoint: summary.lastCheckpoint, out: f.dir.file("val.csv"))) { messages.append($0) }
        #expect(result.predictions.count == 3 && result.labelsOutOfRange == ["s5"])
        #expect(result.metrics?.count == 2 && result.metrics?.confusion.joined().reduce(0, +) == 2)
        #expect(messages.contains { $0.contains("s5") && $0.contains("outside") })
    }

    /// 6: a slide whose level-0 tiles are corrupt in the middle ingests (its tissue map comes from a coarser level) and
    /// trains: the bad patches are read as background, counted in the metrics and listed; past --max-bad-patches the
    /// run stops with a message naming the list.
    @Test func corruptTilesAreSkippedAndCounted() throws {
        let f = try TrainerFixture.corruptTiles(damaged: [1])

        // Trained in child processes, as a user runs it: the damaged reads stay out of the test process.
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let common = ["--db", f.db, "--backbone", "tiny", "--latent", "16", "--head-features", "16", "--epochs", "1", "--batch-size", "4",
                      "--sampling", "0.25", "--normalization", "mnist", "--seed", "7"]
        let tolerant = try Executables.run("train", common + ["--out", f.dir.file("run"), "--max-bad-patches", "0.5"])
        #expect(tolerant.status == 0, "\(tolerant.errors)")
        #expect(tolerant.errors.contains("unreadable patches read as background"))
        let line = try String(contentsOfFile: f.dir.file("run/metrics.jsonl"), encoding: .utf8).split(separator: "\n").last ?? ""
        let bad = try #require(try JSONDecoder().decode(EpochMetrics.self, from: Data(line.utf8)).badPatches)
        #expect(bad > 0 && bad <= 32, "\(bad) bad patches")
        let list = try String(contentsOfFile: f.dir.file("run/bad-patches.csv"), encoding: .utf8).split(separator: "\n")
        #expect(list.count == bad + 1 && list.dropFirst().allSatisfy { $0.contains("s1.tiff") })

        let strict = try Executables.run("train", common + ["--out", f.dir.file("strict"), "--max-bad-patches", "0"])
        #expect(strict.status == 1 && strict.errors.contains("bad-patches.csv") && strict.errors.contains("--max-bad-patches"), "\(strict.errors)")
    }
}
