import Foundation
import Testing
@testable import Basics

struct AtomicFileTests {
    func folder() throws -> String {
        let path = NSTemporaryDirectory() + "atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func writesReplacesAndLeavesNoTemporary() throws {
        let dir = try folder(), path = dir + "/a.txt"
        try AtomicFile.write("one", to: path)
        try AtomicFile.write("two", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "two")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.txt"])
    }

    /// A producer that fails leaves the old content and no temporary file.
    @Test func failedProducerKeepsTheOldFile() throws {
        let dir = try folder(), path = dir + "/a.txt"
        try AtomicFile.write("old", to: path)
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try AtomicFile.replace(path) { temp in
                try "partial".write(toFile: temp, atomically: false, encoding: .utf8)
                throw Boom()
            }
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "old")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.txt"])
    }

    @Test func staleTemporariesOfKilledWritersAreRemoved() throws {
        let dir = try folder(), path = dir + "/metrics.jsonl"
        for name in ["metrics.jsonl.tmp-123", "metrics.jsonl.tmp-9-77", "other.tmp-1"] {
            try "x".write(toFile: dir + "/" + name, atomically: false, encoding: .utf8)
        }
        #expect(AtomicFile.removeStaleTemporaries(beside: path) == 2)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["other.tmp-1"])
    }

    @Test func unwritableFolderNamesTheFile() throws {
        let error = #expect(throws: AtomicFileError.self) { try AtomicFile.write("x", to: "/nonexistent-folder/a.txt") }
        #expect(error?.description.contains("/nonexistent-folder/a.txt") == true)
        #expect(error?.errorKind == .unwritable)
    }

    /// The file is synced before the rename and its folder after it, so a power loss finds the old file or the whole
    /// new one, never a renamed empty one.
    @Test func syncsTheFileBeforeAndTheFolderAfterTheRename() throws {
        let dir = try folder(), path = dir + "/a.json"
        var steps: [String] = []
        try AtomicFile.replace(path, steps: { steps.append($0) }) { temp in try "{}".write(toFile: temp, atomically: false, encoding: .utf8) }
        #expect(steps.count == 3)
        #expect(steps.first?.hasPrefix("sync \(path).tmp-") == true && steps[1] == "rename" && steps.last == "sync \(dir)", "\(steps)")
    }
}
