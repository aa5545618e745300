import Basics
import Foundation

/// A file or folder a stage read or wrote, as recorded in `run.json`.
public struct FileRecord: Sendable, Equatable, Codable {
    public var option: String
    public var path: String
    public var exists: Bool
    public var kind: String          // file | directory | missing
    public var bytes: Int64
    public var files: Int
    /// FNV-1a 64 of the content (files) or of the listing with sizes and modification times (folders).
    public var hash: String
}

/// One stage's record in `run.json`.
public struct StageRecord: Sendable, Equatable, Codable {
    public var name: String
    public var stage: String
    /// done | skipped (up to date) | failed | stopped-at-time-limit (train: resumable, continued by the next run) | not-run (before --from, or after a failure)
    public var status: String
    public var reason: String?
    public var command: [String]
    public var options: [String: OptionValue]
    public var inputs: [FileRecord]
    public var outputs: [FileRecord]
    public var fingerprint: String
    public var started: String?
    public var finished: String?
    public var seconds: Double?
    public var exitStatus: Int32?
    /// The launcher the stage ran under (`mpirun -np 4 ...`), nil when it ran as one process.
    public var launcher: [String]?
}

/// `run.json`: what a pipeline run did, so any result can be traced to what made it.
public struct RunManifest: Sendable, Codable {
    public var pipeline: String
    public var pipelineHash: String
    public var tool: String
    public var version: String
    public var gitCommit: String
    public var variables: [String: String]
    public var arguments: [String]
    public var started: String
    public var finished: String?
    /// running | done | failed | stopped-at-time-limit (the last stage run stopped at its time limit)
    public var status: String
    public var failedStage: String?
    public var stages: [StageRecord]
}

/// What the runner remembers between runs (`state.json`): per stage, the fingerprint and outputs of its last success.
struct RunnerState: Codable {
    struct Entry: Codable {
        var fingerprint: String
        var outputs: [FileRecord]
        var succeeded: Bool
    }
    var stages: [String: Entry] = [:]
}

/// Runs a pipeline's stages in order by calling the stage executables (`gigapatch-<stage>`, found beside the running
/// `gigapatch` or on PATH), each in its own process with its own output, like make:
///
/// - A stage's fingerprint hashes its stage, its resolved options, the contents of its input files (listing of input
///   folders) and the fingerprint of the stage before it. A stage whose fingerprint matches its last success and
///   whose outputs are unchanged (the patch index: still present) is skipped; `force` redoes it.
/// - A stage redone because something changed starts clean: its output folder (train), patch index (ingest) is
///   removed first. A stage retried with an unchanged fingerprint after a failure resumes instead (ingest and
///   ultramnist skip finished work; train continues from its last checkpoint with `--resume`).
/// - A failed stage stops the run; `run.json` names it and a re-run resumes from it.
public final class PipelineRunner {
    public let file: PipelineFile
    public var from: String?
    public var force: Set<String> = []
    public var dryRun = false
    /// Where the stage executables are; nil = beside this executable, then PATH.
    public var executableDirectory: String?
    public var arguments: [String] = []
    let log: (String) -> Void

    public static let version = Provenance.version

    public init(file: PipelineFile, log: @escaping (String) -> Void) {
        self.file = file
        self.log = log
    }

    var statePath: String { (file.runDirectory as NSString).appendingPathComponent("state.json") }
    var manifestPath: String { (file.runDirectory as NSString).appendingPathComponent("run.json") }

    /// Runs the pipeline; returns the manifest (also written to RUN/run.json).
    /// - Throws: `PipelineError` for a stage that failed (after writing run.json) or a bad request.
    @discardableResult
    public func run() throws -> RunManifest {
        if let from, !file.stages.contains(where: { $0.name == from }) {
            throw PipelineError("--from \(from): no such stage; stages: \(file.stages.map(\.name).joined(separator: ", "))")
        }
        for name in force where !file.stages.contains(where: { $0.name == name }) {
            throw PipelineError("--force \(name): no such stage; stages: \(file.stages.map(\.name).joined(separator: ", "))")
        }
        try checkOptions()
        let fm = FileManager.default
        if !dryRun { try fm.createDirectory(atPath: file.runDirectory, withIntermediateDirectories: true) }
        var state = (try? JSONDecoder().decode(RunnerState.self, from: Data(contentsOf: URL(fileURLWithPath: statePath)))) ?? RunnerState()
        var manifest = RunManifest(pipeline: absolutePath(file.path), pipelineHash: Fingerprint.file(file.path), tool: "gigapatch",
                                   version: Self.version, gitCommit: Self.gitCommit(near: file.path), variables: file.variables,
                                   arguments: arguments, started: Self.now(), finished: nil, status: "running", failedStage: nil, stages: [])
        var previous = ""
        var reached = from == nil
        var failure: PipelineError?
        for stage in file.stages {
            if stage.name == from { reached = true }
            let inputs = stage.kind.inputs.compactMap { key in stage.text(key).map { Fingerprint.record(option: key, path: $0) } }
            var hasher = Fingerprint.Hasher()
            hasher.add(stage.kind.name)
            hasher.add(stage.fingerprintArguments.joined(separator: "\u{1}"))
            for input in inputs { hasher.add(input.path + ":" + input.hash) }
            hasher.add(previous)
            let fingerprint = hasher.hex
            previous = fingerprint
            // The launcher is not in the fingerprint: the same stage on 4 ranks instead of 2 makes the same outputs.
            let command = try launcherCommand(stage.launcher) + [try executable(stage.kind.executable)] + stage.kind.subcommand + stage.arguments
            var record = StageRecord(name: stage.name, stage: stage.kind.name, status: "not-run", reason: nil, command: command,
                                     options: Dictionary(stage.options, uniquingKeysWith: { $1 }), inputs: inputs,
                                     outputs: [], fingerprint: fingerprint)
            record.launcher = stage.launcher.isEmpty ? nil : stage.launcher
            if failure != nil || !reached {
                record.reason = failure != nil ? "an earlier stage failed" : "before --from \(from!)"
                record.outputs = outputs(of: stage)
                manifest.stages.append(record)
                continue
            }
            let last = state.stages[stage.name]
            let currentOutputs = outputs(of: stage)
            let upToDate = last?.succeeded == true && last?.fingerprint == fingerprint && Self.same(last!.outputs, currentOutputs)
            if upToDate && !force.contains(stage.name) {
                record.status = "skipped"
                record.reason = "up to date"
                record.outputs = currentOutputs
                log("[\(stage.name)] up to date, skipped")
                manifest.stages.append(record)
                continue
            }
            let retry = last?.succeeded == false && last?.fingerprint == fingerprint && !force.contains(stage.name)
            record.reason = force.contains(stage.name) ? "forced" : retry ? "retrying after failure" : last == nil ? "never run" :
                last!.fingerprint != fingerprint ? "inputs or parameters changed" : "outputs changed"
            var run = command
            if retry, let resume = stage.kind.resume, let folder = stage.text(resume.option),
               fm.fileExists(atPath: (folder as NSString).appendingPathComponent(resume.marker)) {
                run.append(resume.flag)
                record.command = run      // run.json says what ran
            }
            if dryRun {
                log("[\(stage.name)] would run (\(record.reason!)): \(Self.shellLine(run))")
                record.status = "not-run"
                manifest.stages.append(record)
                continue
            }
            if !retry { try clean(stage) }
            log("[\(stage.name)] running (\(record.reason!)): \(Self.shellLine(run))")
            record.started = Self.now()
            let start = Date()
            state.stages[stage.name] = RunnerState.Entry(fingerprint: fingerprint, outputs: [], succeeded: false)
            try save(state)
            let status = try Self.execute(run)
            record.seconds = Date().timeIntervalSince(start)
            record.finished = Self.now()
            record.exitStatus = status
            record.outputs = outputs(of: stage)
            if status == 0 {
                record.status = "done"
                state.stages[stage.name] = RunnerState.Entry(fingerprint: fingerprint, outputs: record.outputs, succeeded: true)
                try save(state)
            } else {
                record.status = "failed"
                manifest.failedStage = stage.name
                if status == StageKind.timeLimitStatus && stage.kind.resume != nil {
                    record.status = "stopped-at-time-limit"
                    failure = PipelineError("stage '\(stage.name)' stopped at its time-limit before the end of its schedule, its last epoch kept; run the pipeline again to continue it from there.")
                } else {
                    failure = PipelineError("stage '\(stage.name)' (\(stage.kind.executable)) failed with exit status \(status); see its message above. Fix the cause and run the pipeline again: it resumes from '\(stage.name)'.")
                }
            }
            manifest.stages.append(record)
            try writeManifest(manifest)
        }
        manifest.finished = Self.now()
        manifest.status = failure == nil ? "done" : manifest.stages.last?.status == "stopped-at-time-limit" ? "stopped-at-time-limit" : "failed"
        if !dryRun { try writeManifest(manifest) }
        if let failure { throw failure }
        return manifest
    }

    /// Records of a stage's outputs; shared outputs (the patch index) count by existence only.
    func outputs(of stage: PipelineStage) -> [FileRecord] {
        stage.kind.outputs.compactMap { key in stage.text(key).map { Fingerprint.record(option: key, path: $0) } } +
            stage.kind.sharedOutputs.compactMap { key in
                stage.text(key).map { path in
                    var r = Fingerprint.record(option: key, path: path, contents: false)
                    r.hash = r.exists ? "present" : "missing"
                    r.bytes = 0
                    return r
                }
            }
    }

    static func same(_ a: [FileRecord], _ b: [FileRecord]) -> Bool {
        a.map { [$0.option, $0.path, $0.hash] } == b.map { [$0.option, $0.path, $0.hash] }
    }

    /// Removes what a redone stage rebuilds from scratch: the training run folder, the patch index of an ingest.
    func clean(_ stage: PipelineStage) throws {
        let fm = FileManager.default
        let paths = stage.kind.cleanOnRedo.flatMap { clean in stage.text(clean.option).map { base in clean.suffixes.map { base + $0 } } ?? [] }
        for path in paths where fm.fileExists(atPath: path) {
            log("[\(stage.name)] removing \(path) (rebuilt from scratch)")
            try fm.removeItem(atPath: path)
        }
    }

    /// Checks every stage's options against what its executable accepts (its `--experimental-dump-help`), before any
    /// stage runs, so a typo in the last stage is found before an hour of training in an earlier one.
    /// - Throws: `PipelineError` listing every option a stage's executable does not accept.
    func checkOptions() throws {
        var accepted: [String: Set<String>] = [:]
        var problems: [String] = []
        for stage in file.stages {
            let name = ([stage.kind.executable] + stage.kind.subcommand).joined(separator: " ")
            if accepted[name] == nil { accepted[name] = try Self.longOptions(of: try executable(stage.kind.executable), subcommand: stage.kind.subcommand) }
            for key in stage.options.map(\.key) where !accepted[name]!.contains(key) {
                let close = accepted[name]!.filter { $0.hasPrefix(String(key.prefix(3))) }.sorted().prefix(3)
                problems.append("stage '\(stage.name)' gives --\(key), which \(name) does not accept" + (close.isEmpty ? "" : " (did you mean \(close.map { "--" + $0 }.joined(separator: ", "))?)"))
            }
        }
        guard problems.isEmpty else {
            throw PipelineError("\(file.path): \(problems.joined(separator: "; ")); nothing was run", kind: .badOption)
        }
    }

    /// The long option names an executable accepts, from argument-parser's tool description.
    static func longOptions(of executable: String, subcommand: [String] = []) throws -> Set<String> {
        let process = Process(), pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = subcommand + ["--experimental-dump-help"]
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw PipelineError("\(executable): cannot start (\(error))") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let command = object["command"] as? [String: Any], let arguments = command["arguments"] as? [[String: Any]] else {
            throw PipelineError("\(executable): could not read the options it accepts (--experimental-dump-help); rebuild it")
        }
        var names = Set<String>()
        for argument in arguments {
            for name in argument["names"] as? [[String: Any]] ?? [] where name["kind"] as? String == "long" {
                if let text = name["name"] as? String { names.insert(text) }
            }
        }
        return names
    }

    func executable(_ name: String) throws -> String {
        let fm = FileManager.default
        let directories = [executableDirectory ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path]
            + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in directories {
            let path = (directory as NSString).appendingPathComponent(name)
            if fm.isExecutableFile(atPath: path) { return path }
        }
        throw PipelineError("\(name) not found beside gigapatch or on PATH; build it (swift build -c release) first")
    }

    /// The launcher's words with its program found on PATH (or as given, with a slash); empty stays empty.
    func launcherCommand(_ words: [String]) throws -> [String] {
        guard let program = words.first else { return [] }
        if program.contains("/") {
            guard FileManager.default.isExecutableFile(atPath: program) else { throw PipelineError("launcher \(program): no such executable") }
            return words
        }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = (String(directory) as NSString).appendingPathComponent(program)
            if FileManager.default.isExecutableFile(atPath: path) { return [path] + words.dropFirst() }
        }
        throw PipelineError("launcher \(program) not found on PATH; install it (Open MPI's mpirun: apt-get install openmpi-bin) or give its full path")
    }

    func save(_ state: RunnerState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try Self.atomicWrite(try encoder.encode(state), to: statePath)
    }

    func writeManifest(_ manifest: RunManifest) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try Self.atomicWrite(try encoder.encode(manifest), to: manifestPath)
    }

    static func atomicWrite(_ data: Data, to path: String) throws {
        do { try AtomicFile.write(data, to: path) } catch { throw PipelineError("\(error)") }
    }

    /// Runs a command with the terminal's output; returns its exit status.
    static func execute(_ command: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        do { try process.run() } catch { throw PipelineError("\(command[0]): cannot start (\(error))") }
        process.waitUntilExit()
        return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    static func shellLine(_ command: [String]) -> String {
        command.map { arg in
            arg.allSatisfy { $0.isLetter || $0.isNumber || "-_./=:,@+".contains($0) } ? arg : "'" + arg.replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    static func now() -> String { ISO8601DateFormatter().string(from: Date()) }

    /// The git commit of the repository holding `path` (the pipeline file), or "unknown".
    /// The commit of the checkout holding the pipeline file (its folder).
    static func gitCommit(near path: String) -> String {
        Provenance.gitCommit(near: (absolutePath(path) as NSString).deletingLastPathComponent)
    }
}

func absolutePath(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

/// Content fingerprints: FNV-1a 64, fast and dependency-free (change detection, not security).
enum Fingerprint {
    struct Hasher {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            for b in bytes { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        mutating func add(_ s: String) {
            var s = s + "\u{0}"
            s.withUTF8 { add(UnsafeRawBufferPointer($0)) }
        }
        var hex: String { String(format: "%016llx", value) }
    }

    static func file(_ path: String) -> String {
        var h = Hasher()
        guard let handle = FileHandle(forReadingAtPath: path) else { return "missing" }
        defer { try? handle.close() }
        while let chunk = try? handle.read(upToCount: 1 << 20), !chunk.isEmpty { chunk.withUnsafeBytes { h.add($0) } }
        return h.hex
    }

    /// A file's size and content hash, or a folder's file count, total size and listing hash (sizes and mtimes).
    static func record(option: String, path: String, contents: Bool = true) -> FileRecord {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return FileRecord(option: option, path: path, exists: false, kind: "missing", bytes: 0, files: 0, hash: "missing")
        }
        if !isDirectory.boolValue {
            let size = (try? fm.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? 0
            return FileRecord(option: option, path: path, exists: true, kind: "file", bytes: size, files: 1, hash: contents ? file(path) : "")
        }
        var h = Hasher(), bytes: Int64 = 0, files = 0
        let entries = (fm.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
        for entry in entries {
            let full = (path as NSString).appendingPathComponent(entry)
            guard let attributes = try? fm.attributesOfItem(atPath: full), attributes[.type] as? FileAttributeType == .typeRegular else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            h.add("\(entry)|\(size)|\(mtime)")
            bytes += size
            files += 1
        }
        return FileRecord(option: option, path: path, exists: true, kind: "directory", bytes: bytes, files: files, hash: h.hex)
    }
}
