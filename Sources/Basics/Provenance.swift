import Foundation

/// What made a result: the tool's version and the git commit of the checkout it ran in.
public enum Provenance {
    /// Gigapatch's version.
    public static let version = "0.1.0"

    /// The commit of the git checkout holding `path` (a file or folder), or "unknown".
    public static func gitCommit(near path: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var folder = URL(fileURLWithPath: path).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        if !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
            folder = (folder as NSString).deletingLastPathComponent
        }
        process.arguments = ["git", "-C", folder, "rev-parse", "HEAD"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "unknown" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return process.terminationStatus == 0 && !text.isEmpty ? text : "unknown"
    }
}
