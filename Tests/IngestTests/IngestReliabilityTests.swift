import Foundation
import GRDB
import SlideIO
@testable import PatchIndex
import TestSupport
import Testing
@testable import Ingest

/// Issue 17's ingest defects, tried through the executable as a user (or a scheduler) meets them.
struct IngestReliabilityTests {
    /// A folder of small slides (tissue kept everywhere with --tissue none) and, optionally, a file that is no slide.
    static func folder(slides: Int = 3, broken: Bool = false) throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("slides"), withIntermediateDirectories: true)
        for i in 0 ..< slides {
            try SyntheticSlide(width: 256, height: 256, blobs: [Blob(centerX: 128, centerY: 128, radiusX: 60, radiusY: 60)])
                .write(to: dir.file("slides/s\(i).tiff"))
        }
        if broken { try "not a slide".write(toFile: dir.file("slides/broken.tiff"), atomically: true, encoding: .utf8) }
        return dir
    }

    static func ingest(_ dir: TemporaryDirectory, db: String = "index.sqlite", _ extra: [String] = [], environment: [String: String] = [:]) throws -> Executables.Result {
        try Executables.run("ingest", ["--slides", dir.file("slides"), "--db", dir.file(db), "--dataset", "d", "--tissue", "none",
                                       "--patch-size", "64", "--workers", "1"] + extra, environment: environment)
    }

    /// 16: a re-run that skips slides failed earlier still exits 1 and says how to retry them.
    @Test func rerunWithFailedSlidesInTheIndexExitsOne() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let dir = try Self.folder(slides: 1, broken: true)
        let first = try Self.ingest(dir)
        #expect(first.status == 1)
        let second = try Self.ingest(dir)
        #expect(second.status == 1, "\(second.output)\(second.errors)")
        #expect((second.output + second.errors).contains("--retry-failed"))
    }

    /// 11: a zero-byte or foreign --db is refused and left as it was, unless --create-db says to make it an index.
    @Test func aFileThatIsNotAnIndexIsRefused() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let dir = try Self.folder(slides: 1)
        #expect(FileManager.default.createFile(atPath: dir.file("empty.sqlite"), contents: Data()))
        let refused = try Self.ingest(dir, db: "empty.sqlite")
        #expect(refused.status == 1 && refused.errors.contains("empty.sqlite") && refused.errors.contains("empty"), "\(refused.errors)")
        #expect((try FileManager.default.attributesOfItem(atPath: dir.file("empty.sqlite"))[.size] as? NSNumber)?.intValue == 0)
        #expect(throws: PatchIndexError.self) { try PatchIndex.existing(at: dir.file("empty.sqlite")) }
        // Another program's SQLite database is refused too, its tables untouched.
        let foreign = try DatabaseQueue(path: dir.file("other.sqlite"))
        try foreign.write { try $0.execute(sql: "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep')") }
        try foreign.close()
        let error = #expect(throws: PatchIndexError.self) { try PatchIndex(path: dir.file("other.sqlite")) }
        #expect(error?.message.contains("another SQLite database") == true)
        let kept = try DatabaseQueue(path: dir.file("other.sqlite"))
        #expect(try kept.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") } == ["notes"])
        let created = try Self.ingest(dir, db: "empty.sqlite", ["--create-db"])
        #expect(created.status == 0, "\(created.errors)")
        #expect(try PatchIndex.existing(at: dir.file("empty.sqlite")).statusCounts(tilingID: 1)["done"] == 1)
    }

    /// 9: two ingests starting together on a new index both succeed, agree on one index, and do each slide once.
    @Test func twoIngestsStartingTogetherOnANewIndex() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let dir = try Self.folder(slides: 4)
        for round in 0 ..< 20 {
            let db = "index-\(round).sqlite"
            let results = try [0, 1].parallelMap { _ in try Self.ingest(dir, db: db) }
            for r in results { #expect(r.status == 0, "round \(round): \(r.errors)") }
            let doneLines = results.map { $0.errors.components(separatedBy: "\n").filter { $0.hasPrefix("done ") }.count }.reduce(0, +)
            #expect(doneLines == 4, "round \(round): slides done \(doneLines) times in all")
            #expect(try PatchIndex.existing(at: dir.file(db)).statusCounts(tilingID: 1)["done"] == 4)
        }
    }

    /// 5: an ingest stopped from outside (SIGTERM, as a scheduler's time limit or Ctrl-C) twice while a slide is in
    /// progress leaves that slide pending, not failed; the next run does it and exits 0.
    @Test func stopsFromOutsideAreNotCrashes() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        let dir = try Self.folder(slides: 2)
        for _ in 0 ..< 2 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Executables.directory! + "/gigapatch-ingest")
            process.arguments = ["--slides", dir.file("slides"), "--db", dir.file("index.sqlite"), "--dataset", "d", "--tissue", "none",
                                 "--patch-size", "64", "--workers", "1"]
            process.environment = ProcessInfo.processInfo.environment.merging([IngestStage.pauseInjectionVariable: "s1"]) { $1 }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            var running = false
            for _ in 0 ..< 300 where !running {
                usleep(50_000)
                if FileManager.default.fileExists(atPath: dir.file("index.sqlite")), let index = try? PatchIndex(path: dir.file("index.sqlite")),
                   let id = try? index.datasetID(named: "d"), let status = try? index.slideStatus(datasetID: id, slideKey: "s1", tilingID: 1) {
                    running = status.status == "running"
                }
            }
            #expect(running, "the slide never started")
            process.terminate()   // SIGTERM
            process.waitUntilExit()
            #expect(process.terminationStatus == 128 + SIGTERM)
            let index = try PatchIndex(path: dir.file("index.sqlite"))
            let status = try #require(try index.slideStatus(datasetID: index.datasetID(named: "d"), slideKey: "s1", tilingID: 1))
            #expect(status.status == "pending" && status.attempts == 0, "\(status)")
        }
        let last = try Self.ingest(dir)
        #expect(last.status == 0, "\(last.errors)")
        #expect(try PatchIndex(path: dir.file("index.sqlite")).statusCounts(tilingID: 1) == ["done": 2])
    }

    /// 10: an empty file and a TIFF cut short say so, instead of "unsupported format".
    @Test func emptyAndTruncatedFilesSayWhatTheyAre() throws {
        let dir = try Self.folder(slides: 1)
        #expect(FileManager.default.createFile(atPath: dir.file("slides/empty.svs"), contents: Data()))
        let whole = try Data(contentsOf: URL(fileURLWithPath: dir.file("slides/s0.tiff")))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: dir.file("slides/cut.tiff")))
        do { _ = try Slide(path: dir.file("slides/empty.svs")); Issue.record("an empty file opened") } catch {
            #expect(error.kind == .emptyFile, "\(error)")
        }
        do { _ = try Slide(path: dir.file("slides/cut.tiff")); Issue.record("a truncated TIFF opened") } catch {
            #expect(error.kind == .truncated, "\(error)")
        }
        let request = IngestRequest(slidesDirectory: dir.file("slides"), manifestPath: nil, databasePath: dir.file("i.sqlite"), dataset: "d",
                                    settings: try IngestSettings.preset("ultramnist"), workers: 1)
        let summary = try IngestStage.run(request, log: { _ in }, progress: { _, _, _ in })
        let errors = Dictionary(uniqueKeysWithValues: summary.failures.map { (($0.slide as NSString).lastPathComponent, $0.error) })
        #expect(errors["empty.svs"]?.contains("empty file") == true && errors["cut.tiff"]?.contains("truncated") == true, "\(errors)")
    }

    /// 10: what a user without read permission meets: an unreadable subfolder, file or slide folder is named with
    /// "permission denied" and makes the exit status 1. Run as an unprivileged user (root reads everything).
    @Test func unreadableFoldersAndFilesAreReported() throws {
        try #require(Executables.directory != nil, "build the executables first (scripts/test does)")
        var asUser: [String] = []
        if getuid() == 0 {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else { return }   // root reads everything; nothing to test
            asUser = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            // The unprivileged user must reach the build folder (not so under a private home folder): skip otherwise.
            let probe = Process()
            probe.executableURL = URL(fileURLWithPath: asUser[0])
            probe.arguments = Array(asUser.dropFirst()) + ["/usr/bin/test", "-x", Executables.directory! + "/gigapatch-ingest"]
            try probe.run()
            probe.waitUntilExit()
            guard probe.terminationStatus == 0 else { return }
        }
        let dir = try Self.folder(slides: 2)
        try FileManager.default.createDirectory(atPath: dir.file("slides/sub"), withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: dir.file("slides/s1.tiff"), toPath: dir.file("slides/sub/s1.tiff"))
        try SyntheticSlide(width: 256, height: 256, blobs: []).write(to: dir.file("slides/locked.tiff"))
        for (path, mode) in [(dir.path, 0o777), (dir.file("slides"), 0o755), (dir.file("slides/s0.tiff"), 0o644),
                             (dir.file("slides/sub"), 0o000), (dir.file("slides/locked.tiff"), 0o000)] {
            #expect(chmod(path, mode_t(mode)) == 0)
        }
        defer { _ = chmod(dir.file("slides/sub"), 0o755); _ = chmod(dir.file("slides"), 0o755) }
        func ingest() throws -> (status: Int32, text: String) {
            let process = Process(), output = Pipe()
            let command = asUser + [Executables.directory! + "/gigapatch-ingest", "--slides", dir.file("slides"), "--db", dir.file("index.sqlite"),
                                    "--tissue", "none", "--patch-size", "64", "--workers", "1"]
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }
        let first = try ingest()
        #expect(first.status == 1, "\(first.text)")
        #expect(first.text.contains(dir.file("slides/sub")) && first.text.contains("permission denied"), "\(first.text)")
        #expect(first.text.contains("locked.tiff: permission denied") && !first.text.contains("unsupported format"), "\(first.text)")
        #expect(first.text.contains("done     s0"), "\(first.text)")
        #expect(chmod(dir.file("slides"), 0o000) == 0)
        let top = try ingest()
        #expect(top.status == 1 && top.text.contains(dir.file("slides")) && top.text.contains("permission denied"), "\(top.text)")
    }
}

extension Array {
    /// `transform` of every element, each on its own thread, in order.
    func parallelMap<T: Sendable>(_ transform: @escaping @Sendable (Element) throws -> T) throws -> [T] where Element: Sendable {
        let results = UnsafeMutableBufferPointer<Result<T, Error>?>.allocate(capacity: count)
        results.initialize(repeating: nil)
        defer { results.deallocate() }
        nonisolated(unsafe) let slots = results
        let items = self
        DispatchQueue.concurrentPerform(iterations: count) { i in slots[i] = Result { try transform(items[i]) } }
        return try results.map { try $0!.get() }
    }
}
