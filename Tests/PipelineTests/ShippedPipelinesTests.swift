import Foundation
import Testing
@testable import Pipeline

/// The pipelines in `pipelines/` load, and every option they give a stage is one its executable accepts (a typo
/// would otherwise surface only when a user runs that stage, perhaps after an hour of training).
struct ShippedPipelinesTests {
    @Test func everyShippedPipelineNamesOnlyOptionsItsStagesAccept() throws {
        let binaries: String = try #require(PipelineFixture.binaries, "build the executables first (scripts/test does)")
        let folder = PandaPipelineTests.repository + "/pipelines"
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.contains("ultramnist-demo.yaml") && files.contains("panda.yaml") && files.count >= 4)
        for name in files {
            let file = try PipelineFile.load(folder + "/" + name)
            #expect(!file.stages.isEmpty, "\(name) has no stages")
            // The runner's own check: each stage's options against its executable's (and subcommand's) accepted ones.
            let runner = PipelineRunner(file: file) { _ in }
            runner.executableDirectory = binaries
            #expect(throws: Never.self, "\(name)") { try runner.checkOptions() }
        }
    }
}
