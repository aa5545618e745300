import Basics
import Foundation
import GRDB

/// An error from the patch index database, naming the file and what to do.
public struct PatchIndexError: Error, Sendable, CustomStringConvertible, KindedError {
    public let path: String
    public let message: String
    /// missing-file (no index there), corrupt (not a Gigapatch index, or cannot be migrated), or other.
    public let kind: ErrorKind

    public init(path: String, message: String, kind: ErrorKind = .other) {
        self.path = path
        self.message = message
        self.kind = kind
    }

    public var description: String { "\(path): patch index: \(message)" }
}

/// The SQLite patch index: slides, labels, splits, tilings, patch coordinates, runs and predictions.
///
/// Opens in WAL mode with foreign keys on; migrations run on open, so any older or empty file is brought
/// up to date. Every write goes through a transaction.
public final class PatchIndex: Sendable {
    /// The database file path, or ":memory:".
    public let path: String
    /// GRDB's connection: a pool (WAL, concurrent readers) for files, a queue for in-memory databases. Internal: every
    /// other module goes through the named queries, so this module is the only one that writes SQL.
    let writer: any DatabaseWriter

    /// Opens (creating if absent) the index at `path` and migrates it.
    ///
    /// A file that is there but is not a Gigapatch index (empty, or another program's SQLite database) is refused,
    /// so a wrong `--db` never turns into a new, silently empty index; `replacingForeign` makes such a file one.
    /// - Throws: `PatchIndexError`: corrupt (not an index, not SQLite, cannot be migrated).
    public init(path: String, replacingForeign: Bool = false) throws {
        self.path = path
        let refusal = { (problem: String) in
            PatchIndexError(path: path, message: "\(problem), not a Gigapatch patch index; give another --db, or remove the file (ingest: --create-db makes it one)", kind: .corrupt)
        }
        if !replacingForeign, let problem = Self.foreignFileProblem(at: path) { throw refusal(problem) }
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(30)
        do {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            if !FileManager.default.fileExists(atPath: path) { try Self.create(path, configuration: config) }
            // Processes starting together on one index: opening (WAL mode) and migrating are retried while another
            // holds the lock, and each migration runs in its own transaction, so the second finds it applied.
            var attempt = 0
            while true {
                do {
                    let pool = try DatabasePool(path: path, configuration: config)
                    if !replacingForeign, let problem = try Self.foreignTablesProblem(pool) { throw refusal(problem) }
                    try Schema.migrator.migrate(pool)
                    writer = pool
                    break
                } catch let error as DatabaseError where attempt < 20 && [.SQLITE_BUSY, .SQLITE_LOCKED].contains(error.resultCode) {
                    attempt += 1
                    usleep(useconds_t(20_000 * attempt))
                }
            }
        } catch let error as PatchIndexError {
            throw error
        } catch {
            throw PatchIndexError(path: path, message: "cannot open or migrate (\(error)); check the path is a writable SQLite file made by Gigapatch", kind: .corrupt)
        }
    }

    /// Makes a new index at `path` whole or not at all: built and migrated under a temporary name, then linked into
    /// place only if no other process made one meanwhile (two ingests starting on a new index agree on one file, and
    /// nobody ever sees it empty).
    static func create(_ path: String, configuration: Configuration) throws {
        let temp = AtomicFile.temporaryPath(for: path)
        defer { for suffix in ["", "-wal", "-shm", "-journal"] { unlink(temp + suffix) } }
        let queue = try DatabaseQueue(path: temp, configuration: configuration)
        try queue.writeWithoutTransaction { try $0.execute(sql: "PRAGMA journal_mode = WAL") }
        try Schema.migrator.migrate(queue)
        try queue.close()
        if link(temp, path) != 0 && errno != EEXIST {
            throw PatchIndexError(path: path, message: "cannot create the index (\(String(cString: strerror(errno))))", kind: .unwritable)
        }
    }

    /// Why an existing file at `path` cannot be an index, from its first bytes, or nil (absent, or SQLite). Reads
    /// only the header: a second connection opened and closed here would break the locks of this process's other
    /// connections to the same file (POSIX locks belong to the process), leaving them reading stale data.
    static func foreignFileProblem(at path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        let header = (try? handle.read(upToCount: 16)) ?? Data()
        try? handle.close()
        if header.isEmpty { return "the file is empty" }
        guard header == Data("SQLite format 3\u{0}".utf8) else { return "the file is not an SQLite database" }
        return nil
    }

    /// Why an open SQLite database is not a Gigapatch index (no migrations table and patches), or nil.
    static func foreignTablesProblem(_ pool: DatabasePool) throws -> String? {
        let tables = try pool.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        if tables.contains("grdb_migrations") && tables.contains("patches") { return nil }
        return tables.isEmpty ? "the file is an empty SQLite database" : "the file is another SQLite database (tables: \(tables.prefix(5).joined(separator: ", ")))"
    }

    /// Opens an index that must already exist (training and prediction read what ingest wrote).
    /// - Throws: `PatchIndexError` naming the path and what to run when the file is absent.
    public static func existing(at path: String) throws -> PatchIndex {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PatchIndexError(path: path, message: "no such database; run gigapatch-ingest first, or check --db", kind: .missingFile)
        }
        return try PatchIndex(path: path)
    }

    /// Opens an index read-only without any locking, for the other ranks of an MPI job, which may run on other
    /// machines over a network filesystem: WAL mode needs shared memory (the -shm file) that such filesystems do not
    /// give, so these readers open the main file as immutable (SQLite's `immutable=1`) and ignore the WAL. The writer
    /// must first fold its WAL into the main file (`checkpointForReaders`) and not write while they read.
    public static func immutableSnapshot(at path: String) throws -> PatchIndex {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PatchIndexError(path: path, message: "no such database on this machine; the index must be on a filesystem every rank sees", kind: .missingFile)
        }
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%")
        let uri = "file:" + (absolute.addingPercentEncoding(withAllowedCharacters: allowed) ?? absolute) + "?immutable=1"
        var config = Configuration()
        config.readonly = true
        do {
            let queue = try DatabaseQueue(path: uri, configuration: config)
            let tables = try queue.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
            guard tables.contains("patches") else {
                throw PatchIndexError(path: path, message: "read as an immutable snapshot, it has no patches table (the SQLite library may not accept URI file names)", kind: .corrupt)
            }
            return PatchIndex(path: path, writer: queue)
        } catch let error as PatchIndexError {
            throw error
        } catch {
            throw PatchIndexError(path: path, message: "cannot open read-only (\(error))", kind: .unreadable)
        }
    }

    private init(path: String, writer: any DatabaseWriter) {
        self.path = path
        self.writer = writer
    }

    /// Folds the WAL into the main file so that immutable readers (`immutableSnapshot`) see every committed change.
    public func checkpointForReaders() throws {
        guard path != ":memory:" else { return }
        _ = try writer.writeWithoutTransaction { try $0.checkpoint(.truncate) }
    }

    /// An empty in-memory index (tests, dry runs).
    public init() throws {
        path = ":memory:"
        var config = Configuration()
        config.foreignKeysEnabled = true
        writer = try DatabaseQueue(configuration: config)
        try Schema.migrator.migrate(writer)
    }

    /// The id of the dataset called `name`, created when absent.
    public func datasetID(named name: String) throws -> Int64 {
        try writer.write { db in
            if let id = try Int64.fetchOne(db, sql: "SELECT id FROM datasets WHERE name = ?", arguments: [name]) { return id }
            try db.execute(sql: "INSERT INTO datasets (name) VALUES (?)", arguments: [name])
            return db.lastInsertedRowID
        }
    }
}
