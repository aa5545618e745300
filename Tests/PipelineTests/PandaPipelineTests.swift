import Foundation
import Manifests
import PatchIndex
import TestSupport
import Testing
@testable import Pipeline

/// pipelines/panda.yaml end to end on a synthetic miniature of PANDA (gigapatch-synthetic panda-set: a dozen
/// PANDA-shaped slides and a train.csv in PANDA's columns), at small sizes.
struct PandaPipelineTests {
    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test func pandaPipelineEndToEndOnMiniature() throws {
        let binaries: String = try #require(PipelineFixture.binaries, "build the executables first (scripts/test does)")
        let dir = TemporaryDirectory()
        let make = Process()
        make.executableURL = URL(fileURLWithPath: binaries + "/gigapatch-synthetic")
        make.arguments = ["panda-set", "--out", dir.file("panda"), "--count", "12", "--size", "2048"]
        make.standardOutput = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        #expect(make.terminationStatus == 0)
        let csv = try CSVTable(text: String(contentsOfFile: dir.file("panda/train.csv"), encoding: .utf8))
        #expect(csv.header == ["image_id", "data_provider", "isup_grade", "gleason_score"] && csv.rows.count == 12)

        let file = try PipelineFile.load(Self.repository + "/pipelines/panda.yaml", overrides: [
            "slides": dir.file("panda/train_images"), "manifest": dir.file("panda/train.csv"), "work": dir.file("out"),
            "patch_size": "64", "backbone": "tiny", "latent": "16", "epochs": "1", "max_grid": "8"])
        let runner = PipelineRunner(file: file) { _ in }
        runner.executableDirectory = binaries
        let manifest = try runner.run()
        #expect(manifest.stages.map(\.status) == ["done", "done", "done", "done", "done"])

        // Folds on isup_grade: 12 slides, 5 folds, every slide in one; the index has them under the default scheme.
        let folds = try CSVTable(text: String(contentsOfFile: dir.file("out/folds.csv"), encoding: .utf8))
        #expect(folds.rows.count == 12)
        let index = try PatchIndex.existing(at: dir.file("out/index.sqlite"))
        let dataset = try #require(try index.existingDatasetID(named: "panda"))
        let tiling = try #require(try index.tilings(datasetID: dataset).first)
        let slides = try index.trainingSlides(datasetID: dataset, tilingID: tiling.id)
        #expect(slides.count == 12 && slides.allSatisfy { $0.fold != nil && $0.label != nil })

        // Fold-0 predictions in PANDA's submission form: image_id,isup_grade for exactly the fold-0 slides.
        let submission = try CSVTable(text: String(contentsOfFile: dir.file("out/fold0-submission.csv"), encoding: .utf8))
        #expect(submission.header == ["image_id", "isup_grade"])
        let fold0 = Set(slides.filter { $0.fold == 0 }.map(\.key))
        #expect(Set(submission.rows.map { $0.fields[0] }) == fold0 && !fold0.isEmpty)
        #expect(submission.rows.allSatisfy { (0 ... 5).contains(Int($0.fields[1]) ?? -1) })
        // The trained checkpoint was selected by kappa and knows its 6 classes.
        let options = try String(contentsOfFile: dir.file("out/train-fold0/options.json"), encoding: .utf8)
        #expect(options.contains("\"select-by\" : \"kappa\"") && options.contains("\"classes\" : 6"))
        // Stain normalisation fitted on the dataset, applied in training and carried by the checkpoint; H&E augmentation.
        let stain = try String(contentsOfFile: dir.file("out/stain.json"), encoding: .utf8)
        #expect(stain.contains("\"method\" : \"macenko\"") && options.contains("stain.json") && options.contains("\"augmentation\" : \"he\""))
        let header = try String(contentsOfFile: dir.file("out/train-fold0/checkpoints/best.safetensors"), encoding: .isoLatin1).prefix(20000)
        #expect(header.contains("gigapatch-stain-target"))
    }
}
