import Foundation

/// A temporary directory removed when the value is deinitialised.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(prefix: String = "gigapatch-test") {
        let base = FileManager.default.temporaryDirectory.path
        path = "\(base)/\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path inside the directory.
    public func file(_ name: String) -> String { "\(path)/\(name)" }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The project's optional real data in `../shared/data` (beside the repository); nil where it is absent.
public enum SharedData {
    /// The repository root, found from this source file's location.
    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0 ..< 3 { url.deleteLastPathComponent() } // Sources/TestSupport/TestFiles.swift
        return url.path
    }()

    /// `../shared/data` relative to the repository root, or `GIGAPATCH_SHARED_DATA` when set.
    public static var root: String? {
        let candidate = ProcessInfo.processInfo.environment["GIGAPATCH_SHARED_DATA"]
            ?? URL(fileURLWithPath: repositoryRoot).deletingLastPathComponent().appendingPathComponent("shared/data").path
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory) && isDirectory.boolValue ? candidate : nil
    }

    /// The path of a file under the shared data folder, nil when it is not there.
    public static func file(_ relative: String) -> String? {
        guard let root else { return nil }
        let path = "\(root)/\(relative)"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }
}
