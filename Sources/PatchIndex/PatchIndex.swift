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
    public init(path: String) throws {
        self.path = path
        var config = Configuration()
        config.foreignKeysEnabled = true
        config.busyMode = .timeout(30)
        do {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            writer = try DatabasePool(path: path, configuration: config)
            try Schema.migrator.migrate(writer)
        } catch {
            throw PatchIndexError(path: path, message: "cannot open or migrate (\(error)); check the path is a writable SQLite file made by Gigapatch", kind: .corrupt)
        }
    }

    /// Opens an index that must already exist (training and prediction read what ingest wrote).
    /// - Throws: `PatchIndexError` naming the path and what to run when the file is absent.
    public static func existing(at path: String) throws -> PatchIndex {
        guard FileManager.default.fileExists(atPath: path) else {
            throw PatchIndexError(path: path, message: "no such database; run gigapatch-ingest first, or check --db", kind: .missingFile)
        }
        return try PatchIndex(path: path)
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
