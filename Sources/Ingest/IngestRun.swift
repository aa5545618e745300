import Cluster
import Foundation
import Manifests
import PatchIndex
import SlideIO

/// What a user asks of the ingest stage.
public struct IngestRequest: Sendable {
    public var slidesDirectory: String?
    public var manifestPath: String?
    public var databasePath: String
    public var dataset: String
    public var settings: IngestSettings
    public var workers: Int
    public var qcDirectory: String?
    /// Retry slides that failed before (otherwise they are skipped until their file changes).
    public var retryFailed: Bool
    /// Make `databasePath` an index even when it is a file that is not one (empty, or another SQLite database).
    public var createDatabase = false
    /// QC pictures: JPEG (a 2048 px picture of a real slide in a few hundred KB) or PNG (lossless, 10x larger).
    public var qcFormat: QCFormat = .jpeg
    /// Longest side of the QC pictures (default: the tissue mask's, at most 2048).
    public var qcSize: Int?

    public init(slidesDirectory: String?, manifestPath: String?, databasePath: String, dataset: String, settings: IngestSettings,
                workers: Int = ProcessInfo.processInfo.activeProcessorCount, qcDirectory: String? = nil, retryFailed: Bool = false) {
        self.slidesDirectory = slidesDirectory
        self.manifestPath = manifestPath
        self.databasePath = databasePath
        self.dataset = dataset
        self.settings = settings
        self.workers = workers
        self.qcDirectory = qcDirectory
        self.retryFailed = retryFailed
    }
}

/// The outcome of an ingest run, as written to `--summary FILE`.
public struct IngestSummary: Sendable, Codable, Equatable {
    public struct Counts: Sendable, Codable, Equatable {
        public var done = 0, empty = 0, failed = 0, skipped = 0
        /// Of the skipped: slides that failed in an earlier run and were not retried (still failed in the index).
        public var failedEarlier = 0

        enum CodingKeys: String, CodingKey { case done, empty, failed, skipped, failedEarlier = "failed_earlier" }
    }

    /// Slides of the requested set that are failed in the index after this run (this run's and earlier ones').
    public var failedInIndex: Int { slides.failed + slides.failedEarlier }

    public struct Failure: Sendable, Codable, Equatable {
        public var slide: String
        public var error: String
    }

    public var slides = Counts()
    /// Patches written by this run.
    public var patches = 0
    public var failures: [Failure] = []
    /// Slides without a patch this run, and why.
    public var empty: [Failure] = []
    public var seconds = 0.0
    public var tilingID: Int64 = 0
    public var dataset = ""
    /// Keys of the slides requested (whatever became of them), for callers that act on exactly these (not in JSON).
    public var keys: [String] = []

    enum CodingKeys: String, CodingKey { case slides, patches, failures, empty = "empty_slides", seconds, tilingID = "tiling_id", dataset }

    public init() {}

    /// Summaries from before `empty_slides` still decode.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        slides = try c.decode(Counts.self, forKey: .slides)
        patches = try c.decode(Int.self, forKey: .patches)
        failures = try c.decode([Failure].self, forKey: .failures)
        empty = try c.decodeIfPresent([Failure].self, forKey: .empty) ?? []
        seconds = try c.decode(Double.self, forKey: .seconds)
        tilingID = try c.decode(Int64.self, forKey: .tilingID)
        dataset = try c.decode(String.self, forKey: .dataset)
    }

    /// The end-of-run table: slides per status, patches, time, then each failure.
    public var table: String {
        func row(_ name: String, _ count: Int, _ patches: String = "") -> String {
            name.padding(toLength: 8, withPad: " ", startingAt: 0) + String(repeating: " ", count: max(0, 7 - String(count).count)) + String(count)
                + (patches.isEmpty ? "" : String(repeating: " ", count: max(0, 10 - patches.count)) + patches)
        }
        var lines = ["status   slides   patches"]
        lines.append(row("done", slides.done, String(patches)))
        lines.append(row("empty", slides.empty))
        lines.append(row("failed", slides.failed))
        lines.append(row("skipped", slides.skipped) + (slides.failedEarlier > 0
            ? "   (\(slides.failedEarlier) failed in an earlier run: fix them and re-run with --retry-failed)" : ""))
        let total = slides.done + slides.empty + slides.failed + slides.skipped
        lines.append(row("total", total, String(patches)) + String(format: "   in %.1f s (tiling \(tilingID) of dataset \(dataset))", seconds))
        if !failures.isEmpty {
            lines.append("failures:")
            lines += failures.map { "  \($0.slide): \($0.error)" }
        }
        return lines.joined(separator: "\n")
    }
}

/// The ingest stage: slides (from a folder and/or a manifest) to a patch index, in parallel, resumable.
public enum IngestStage {
    /// Test hook: when the environment names a slide key here, the process kills itself (SIGKILL) right after
    /// marking that slide running, so tests can check what a crash leaves behind and how a re-run recovers.
    public static let faultInjectionVariable = "GIGAPATCH_FAULT_KILL_AT"
    /// Test hook: when the environment names a slide key here, the worker sleeps (60 s) right after marking that
    /// slide running, so tests can stop the process from outside while the slide is in progress.
    public static let pauseInjectionVariable = "GIGAPATCH_FAULT_PAUSE_AT"

    /// Runs the stage. `log` receives one line per finished slide; `progress` (done, total, patches so far) after each.
    ///
    /// Under mpirun (`comm` of several ranks) rank 0 finds the slides, decides which need work and alone writes the
    /// index; it hands slides out one at a time to whichever rank's worker asks (`WorkQueue`), which reads the slide,
    /// finds tissue, lays the grid, writes the QC picture and sends the patches back. Every rank works on
    /// `request.workers` threads. The other ranks return an empty summary.
    public static func run(_ request: IngestRequest, comm: Communicator = .single, log: @escaping @Sendable (String) -> Void,
                           progress: @escaping @Sendable (Int, Int, Int) -> Void) throws -> IngestSummary {
        if !comm.isRoot {
            let pauseAt = ProcessInfo.processInfo.environment[pauseInjectionVariable]
            let rank = comm.rank
            try WorkQueue.run(comm, threads: request.workers, next: { nil }, work: { _, payload in
                encode(process(payload, request: request, pauseAt: pauseAt, rank: rank))
            }, collect: { _, _ in })
            return IngestSummary()
        }
        let start = Date()
        if let problem = request.settings.problem() { throw IngestError("invalid settings: \(problem)") }
        guard request.slidesDirectory != nil || request.manifestPath != nil else { throw IngestError("give --slides DIR, --manifest CSV, or both") }

        var sources: [SlideSource] = []
        var summary = IngestSummary()
        summary.dataset = request.dataset
        var unreadable: [(path: String, reason: String)] = []
        let discovered = try request.slidesDirectory.map { try SlideSources.discover(in: $0, unreadable: &unreadable) } ?? []
        for folder in unreadable {
            log("failed   \(folder.path): folder not searched: \(folder.reason)")
            summary.failures.append(.init(slide: folder.path, error: "folder not searched: \(folder.reason)"))
            summary.slides.failed += 1
        }
        if let manifestPath = request.manifestPath {
            let manifest = try Manifest.read(path: manifestPath, classes: request.settings.classes)
            let (resolved, problems) = SlideSources.resolve(manifest, slidesDirectory: request.slidesDirectory, discovered: discovered)
            sources = resolved
            for problem in manifest.problems + problems {
                log("manifest: \(problem)")
                summary.failures.append(.init(slide: "\(problem.path):\(problem.line)", error: problem.message))
                summary.slides.failed += 1
            }
            let named = Set(resolved.map(\.path))
            let unlisted = discovered.filter { !named.contains($0.path) }.count
            if unlisted > 0 { log("note: \(unlisted) slide file\(unlisted == 1 ? "" : "s") in \(request.slidesDirectory ?? "") not in the manifest, not ingested") }
        } else {
            sources = discovered
        }
        if sources.isEmpty && summary.failures.isEmpty {
            throw IngestError("no slides found in \(request.slidesDirectory ?? request.manifestPath ?? "") (looked for \(SlideSources.extensions.sorted().joined(separator: ", ")) files)", kind: .badData)
        }

        let index = try PatchIndex(path: request.databasePath, replacingForeign: request.createDatabase)
        let datasetID = try index.datasetID(named: request.dataset)
        let s = request.settings
        let tilingID = try index.tilingID(datasetID: datasetID, spec: TilingSpec(
            patchSize: s.patchSize, stride: s.stride ?? s.patchSize, level: s.mpp == nil ? (s.level ?? 0) : nil, targetMPP: s.mpp,
            minTissue: s.minTissue, tissueMethod: s.tissue.method, paramsJSON: s.tilingKey, defaultsJSON: IngestSettings().tilingKey))
        summary.tilingID = tilingID
        summary.keys = sources.map(\.key)
        if let qc = request.qcDirectory { try FileManager.default.createDirectory(atPath: qc, withIntermediateDirectories: true) }

        let state = RunState(summary: summary, total: sources.count)
        let killAt = ProcessInfo.processInfo.environment[faultInjectionVariable]
        let pauseAt = ProcessInfo.processInfo.environment[pauseInjectionVariable]
        // Stopped from outside (Ctrl-C, a scheduler's SIGTERM), the slides in progress go back to pending rather than
        // counting as crashes; then the process ends as the signal would have ended it.
        let stops = StopSignals { signal in
            let released = (try? index.releaseRunningSlides()) ?? 0
            FileHandle.standardError.write(Data("\ngigapatch-ingest: stopped by signal \(signal); \(released) slide\(released == 1 ? "" : "s") in progress left pending for the next run\n".utf8))
            exit(128 + signal)
        }
        defer { stops.cancel() }
        // One writer: this thread decides (index.begin) and records (finish, fail); workers only read slides.
        let finish = { (outcome: Outcome, source: SlideSource) in
            log(outcome.logLine(key: source.key))
            let (done, patches) = state.record(outcome, source: source)
            progress(done, sources.count, patches)
        }
        var position = 0
        var handedOut: [Int: (source: SlideSource, slideID: Int64)] = [:]
        try WorkQueue.run(comm, threads: max(1, min(request.workers, sources.count)), next: {
            while position < sources.count {
                let i = position, source = sources[i]
                position += 1
                switch prepare(source, request: request, index: index, datasetID: datasetID, tilingID: tilingID, killAt: killAt) {
                case .decided(let outcome): finish(outcome, source)
                case .process(let slideID):
                    handedOut[i] = (source, slideID)
                    return (i, Array((try? JSONEncoder().encode(SlideTask(path: source.path, key: source.key))) ?? Data()))
                }
            }
            return nil
        }, work: { [rank = comm.size > 1 ? 0 : nil] _, payload in
            encode(process(payload, request: request, pauseAt: pauseAt, rank: rank))
        }, collect: { i, bytes in
            guard let (source, slideID) = handedOut.removeValue(forKey: i) else { return }
            finish(record(bytes, slideID: slideID, tilingID: tilingID, index: index), source)
        })
        var result = state.summary
        result.seconds = Date().timeIntervalSince(start)
        return result
    }

    /// What happened to one slide.
    enum Outcome {
        case done(patches: Int, note: String)
        case empty(note: String)
        case skipped(status: String)
        case failed(String)

        func logLine(key: String) -> String {
            switch self {
            case .done(let n, let note): return "done     \(key): \(n) patches; \(note)"
            case .empty(let note): return "empty    \(key): no patch holds enough tissue; \(note)"
            case .skipped(let status) where status == "running": return "skipped  \(key): being ingested by another process"
            case .skipped(let status): return "skipped  \(key): already \(status)"
            case .failed(let reason): return "failed   \(key): \(reason)"
            }
        }
    }

    /// A slide handed to a worker, and what the worker made of it (sent between ranks as JSON).
    struct SlideTask: Codable { var path: String; var key: String }
    struct SlideWork: Codable {
        var metadata: SlideMetadata?
        var grid: GridInfo?
        var cells: [PatchCell] = []
        var note = ""
        var error: String?
    }

    enum Preparation {
        /// Nothing to do (done, empty or failed before, being ingested elsewhere) or a failure to record it.
        case decided(Outcome)
        /// Marked running in the index: a worker processes it.
        case process(slideID: Int64)
    }

    /// The writer's decision for one slide: records its file and label, and marks it running when it needs work.
    static func prepare(_ source: SlideSource, request: IngestRequest, index: PatchIndex, datasetID: Int64, tilingID: Int64,
                        killAt: String?) -> Preparation {
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: source.path)
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            let mtime = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            let file = SlideFile(key: source.key, path: source.path, size: size, mtime: mtime)
            let decision = try index.begin(datasetID: datasetID, tilingID: tilingID, file: file, retryFailed: request.retryFailed)
            switch decision {
            case .skip(let id, let status):
                try recordLabel(source, slideID: id, index: index)
                return .decided(.skipped(status: status))
            case .giveUp(_, let reason):
                return .decided(.failed(reason))
            case .process(let id, _):
                try recordLabel(source, slideID: id, index: index)
                if killAt == source.key { kill(getpid(), SIGKILL) }
                return .process(slideID: id)
            }
        } catch {
            return .decided(.failed("\(source.path): cannot record in the patch index: \(error)"))
        }
    }

    /// A worker's job on one slide (any rank, any thread): no index, only the slide and its QC picture.
    /// `rank` (under mpirun) is named in the slide's log line.
    static func process(_ payload: [UInt8], request: IngestRequest, pauseAt: String?, rank: Int? = nil) -> SlideWork {
        guard let task = try? JSONDecoder().decode(SlideTask.self, from: Data(payload)) else { return SlideWork(error: "internal: unreadable task") }
        if pauseAt == task.key { sleep(60) }
        do {
            let qc = request.qcDirectory.map { folder in
                QCOutput(path: "\(folder)/\(task.key.replacingOccurrences(of: "/", with: "_")).\(request.qcFormat.fileExtension)",
                         format: request.qcFormat, maxSize: request.qcSize)
            }
            let result = try SlideIngester.process(path: task.path, settings: request.settings, qc: qc)
            let g = result.grid
            return SlideWork(metadata: result.metadata, grid: GridInfo(rows: g.rows, cols: g.cols, readLevel: g.readLevel, readSize: g.readSize),
                             cells: result.patches, note: "grid \(g.rows) x \(g.cols) at level \(g.readLevel) (\(g.readSize) px read); \(result.tissueSummary)\(rank.map { "; rank \($0)" } ?? "")")
        } catch {
            return SlideWork(error: String(describing: error).replacingOccurrences(of: "\n", with: " ") + (rank.map { " (on rank \($0))" } ?? ""))
        }
    }

    static func encode(_ work: SlideWork) -> [UInt8] {
        Array((try? JSONEncoder().encode(work)) ?? Data(#"{"cells":[],"note":"","error":"internal: result not encodable"}"#.utf8))
    }

    /// The writer records a worker's result: the grid and patches, or the failure.
    static func record(_ bytes: [UInt8], slideID: Int64, tilingID: Int64, index: PatchIndex) -> Outcome {
        let work = (try? JSONDecoder().decode(SlideWork.self, from: Data(bytes))) ?? SlideWork(error: "internal: unreadable result from a worker")
        do {
            if let error = work.error {
                try? index.fail(slideID: slideID, tilingID: tilingID, error: error)
                return .failed(error)
            }
            guard let metadata = work.metadata, let grid = work.grid else { throw IngestError("internal: a worker's result has no grid") }
            try index.finish(slideID: slideID, tilingID: tilingID, metadata: metadata, grid: grid, cells: work.cells)
            return work.cells.isEmpty ? .empty(note: work.note) : .done(patches: work.cells.count, note: work.note)
        } catch {
            let reason = String(describing: error).replacingOccurrences(of: "\n", with: " ")
            try? index.fail(slideID: slideID, tilingID: tilingID, error: reason)
            return .failed(reason)
        }
    }

    static func recordLabel(_ source: SlideSource, slideID: Int64, index: PatchIndex) throws {
        guard let entry = source.entry else { return }
        try index.setLabel(slideID: slideID, label: entry.label, fields: entry.fields)
        if let split = entry.split { try index.setSplit(slideID: slideID, split: split, fold: entry.fold) }
    }
}

/// The tallies of a run.
private final class RunState: @unchecked Sendable {
    private let lock = NSLock()
    private var finished = 0
    let total: Int
    private(set) var summary: IngestSummary

    init(summary: IngestSummary, total: Int) {
        self.summary = summary
        self.total = total
    }

    func record(_ outcome: IngestStage.Outcome, source: SlideSource) -> (done: Int, patches: Int) {
        lock.withLock {
            finished += 1
            switch outcome {
            case .done(let n, _):
                summary.slides.done += 1
                summary.patches += n
            case .empty(let note):
                summary.slides.empty += 1
                summary.empty.append(.init(slide: source.path, error: "no patch holds enough tissue; \(note)"))
            case .skipped(let status):
                summary.slides.skipped += 1
                if status == "failed" { summary.slides.failedEarlier += 1 }
            case .failed(let reason):
                summary.slides.failed += 1
                // Errors from the slide libraries start with the path; the summary names the slide once.
                let error = reason.hasPrefix(source.path + ": ") ? String(reason.dropFirst(source.path.count + 2)) : reason
                summary.failures.append(.init(slide: source.path, error: error))
            }
            return (finished, summary.patches)
        }
    }
}

/// SIGINT and SIGTERM handled on a queue (not in a signal handler), so the handler may use the index; restored to
/// their defaults by `cancel()`.
final class StopSignals: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            sources.append(source)
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
        for number in [SIGINT, SIGTERM] { signal(number, SIG_DFL) }
    }
}
