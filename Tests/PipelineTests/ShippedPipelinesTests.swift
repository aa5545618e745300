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
        var help: [String: String] = [:]
        for name in files {
            let file = try PipelineFile.load(folder + "/" + name)
            #expect(!file.stages.isEmpty, "\(name) has no stages")
            for stage in file.stages {
                let executable = stage.kind.executable
                if help[executable] == nil { help[executable] = try Self.help(of: binaries + "/" + executable) }
                for option in stage.options {
                    let text = help[executable]!, flag = "--\(option.key)"
                    #expect([" ", "\n", "/"].contains { text.contains(flag + $0) },
                            "\(name): stage \(stage.name) gives --\(option.key), which \(executable) does not accept")
                }
            }
        }
    }

    static func help(of executable: String) throws -> String {
        let process = Process(), pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--help"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
