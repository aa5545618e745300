import Foundation
import TestSupport
import Testing
@testable import Pipeline

/// Issue 17's pipeline defects: cyclic or exploding variables, unknown options found only when their stage runs.
struct PipelineReliabilityTests {
    func load(_ text: String) throws -> PipelineFile {
        let dir = TemporaryDirectory()
        try text.write(toFile: dir.file("p.yaml"), atomically: true, encoding: .utf8)
        return try PipelineFile.load(dir.file("p.yaml"))
    }

    /// 13: a cycle is named, and a variable that doubles at every level stops at a bound instead of exhausting memory.
    @Test func cyclicAndExplodingVariablesAreRefused() throws {
        let stages = "stages:\n  - stage: ingest\n    options: {db: \"${a}\"}\n"
        let cycle = #expect(throws: PipelineError.self) { try load("name: p\nvariables:\n  a: \"${b}/x\"\n  b: \"${a}/y\"\n" + stages) }
        #expect(cycle?.message.contains("cycle") == true && cycle?.message.contains("a -> b -> a") == true, "\(cycle?.message ?? "")")
        let selfCycle = #expect(throws: PipelineError.self) { try load("name: p\nvariables:\n  a: \"x${a}\"\n" + stages) }
        #expect(selfCycle?.message.contains("a -> a") == true)
        var lines = ["name: p", "variables:", "  v0: \"xxxxxxxxxxxxxxxx\""]
        for i in 1 ... 30 { lines.append("  v\(i): \"" + String(repeating: "${v\(i - 1)}", count: 8) + "\"") }
        lines.append("  a: \"${v30}\"")
        let big = #expect(throws: PipelineError.self) { try load(lines.joined(separator: "\n") + "\n" + stages) }
        #expect(big?.message.contains("expands to more than") == true)
        // Chains that are fine still resolve, in any order.
        let ok = try load("name: p\nvariables:\n  c: \"${b}/c\"\n  b: \"${a}/b\"\n  a: root\n" + stages.replacingOccurrences(of: "${a}", with: "${c}"))
        #expect(ok.stages[0].text("db") == "root/b/c")
    }

    /// 14: an option a stage's executable does not accept stops the run before any stage runs, dry run included.
    @Test func unknownOptionsAreFoundBeforeAnythingRuns() throws {
        let f = try PipelineFixture()
        var text = try String(contentsOfFile: f.path, encoding: .utf8)
        text += "\n      lerning-rate: 3\n"   // the ingest stage, the last one
        try text.write(toFile: f.path, atomically: true, encoding: .utf8)
        for dryRun in [true, false] {
            let (manifest, error) = try f.run(dryRun: dryRun)
            #expect(manifest == nil)
            #expect(error?.message.contains("--lerning-rate") == true && error?.message.contains("gigapatch-ingest") == true, "\(error?.message ?? "")")
            #expect(!FileManager.default.fileExists(atPath: f.dir.file("data/manifest.csv")), "the first stage ran")
        }
    }
}
