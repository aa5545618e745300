import Foundation

/// Writes a whole file so that readers, a crash or a power loss see the old content or the new, never a part:
/// the bytes go to a temporary name beside the target, are synced to disk, renamed over the target, and then the
/// folder is synced so the rename itself is durable. A temporary file left by a killed writer (`NAME.tmp-*`) is
/// removed by `removeStaleTemporaries(beside:)`.
///
/// Every write of the project that must survive (checkpoints, metrics, options, manifests, pipeline state,
/// summaries, QC pictures, TIFFs) goes through here.
public enum AtomicFile {
    /// The temporary name for `path` used by this process.
    public static func temporaryPath(for path: String) -> String {
        "\(path).tmp-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0 ... .max))"
    }

    /// Writes `data` to `path` atomically and durably.
    /// - Throws: `AtomicFileError` naming the file and the system's reason.
    public static func write(_ data: Data, to path: String) throws {
        try replace(path) { temp in
            guard FileManager.default.createFile(atPath: temp, contents: data) else {
                throw AtomicFileError(path: path, reason: "cannot create \(temp): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Writes text as UTF-8 to `path` atomically and durably.
    public static func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }

    /// Calls `produce` with a temporary path beside `path` that it must fill (through any library), then syncs it and
    /// renames it over `path`. The temporary file is removed when `produce` throws.
    public static func replace(_ path: String, _ produce: (String) throws -> Void) throws {
        try replace(path, steps: nil, produce)
    }

    /// `replace`, telling `steps` (tests) each durable step as it is done: "sync FILE", "rename", "sync FOLDER".
    static func replace(_ path: String, steps: ((String) -> Void)?, _ produce: (String) throws -> Void) throws {
        let temp = temporaryPath(for: path)
        do {
            try produce(temp)
            try sync(temp, what: path)
            steps?("sync \(temp)")
            guard rename(temp, path) == 0 else {
                throw AtomicFileError(path: path, reason: "cannot rename \(temp) into place: \(String(cString: strerror(errno)))")
            }
            steps?("rename")
            try sync(folderOf(path), what: path)
            steps?("sync \(folderOf(path))")
        } catch {
            try? FileManager.default.removeItem(atPath: temp)
            throw error
        }
    }

    /// Removes temporary files of earlier, killed writers of `path` (`path.tmp-*`). Returns how many were removed.
    @discardableResult
    public static func removeStaleTemporaries(beside path: String) -> Int {
        let folder = folderOf(path), name = (path as NSString).lastPathComponent + ".tmp-"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var removed = 0
        for entry in entries where entry.hasPrefix(name) {
            if (try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(entry))) != nil { removed += 1 }
        }
        return removed
    }

    /// Removes every temporary file of a killed writer in `folder` (`NAME.tmp-PID` or `NAME.tmp-PID-N`). Returns how many.
    @discardableResult
    public static func removeStaleTemporaries(inFolder folder: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var removed = 0
        for entry in entries {
            guard let range = entry.range(of: ".tmp-", options: .backwards),
                  entry[range.upperBound...].allSatisfy({ $0.isNumber || $0 == "-" }), range.upperBound < entry.endIndex else { continue }
            if (try? FileManager.default.removeItem(atPath: (folder as NSString).appendingPathComponent(entry))) != nil { removed += 1 }
        }
        return removed
    }

    static func folderOf(_ path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        return folder.isEmpty ? "." : folder
    }

    /// fsync of a file or folder.
    static func sync(_ path: String, what target: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw AtomicFileError(path: target, reason: "cannot open \(path) to sync it: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw AtomicFileError(path: target, reason: "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}

/// A durable write that failed: the file and the system's reason.
public struct AtomicFileError: Error, Sendable, CustomStringConvertible, KindedError {
    public let path: String
    public let reason: String
    public var kind: ErrorKind { .unwritable }
    public var description: String { "\(path): cannot write (\(reason)); check the folder exists, is writable and has space" }
}
