import Foundation

/// The project's executables as a user runs them, for tests of exit statuses and messages.
public enum Executables {
    /// The folder holding the built executables (beside the test runner), or nil when they were not built.
    public static var directory: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        return FileManager.default.isExecutableFile(atPath: directory + "/gigapatch-ingest") ? directory : nil
    }

    /// What one run printed and how it ended.
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errors: String
    }

    /// Runs `gigapatch-NAME` (or `gigapatch` for "") with `arguments` in `directory` (the process's when nil).
    public static func run(_ name: String, _ arguments: [String], in workingDirectory: String? = nil,
                           environment: [String: String] = [:]) throws -> Result {
        guard let folder = directory else { throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "build the executables first (scripts/test does)"]) }
        let process = Process(), output = Pipe(), errors = Pipe()
        process.executableURL = URL(fileURLWithPath: folder + "/" + (name.isEmpty ? "gigapatch" : "gigapatch-\(name)"))
        process.arguments = arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read both pipes while the process runs, so a full pipe never blocks it.
        nonisolated(unsafe) var errorData = Data()
        let reader = Thread { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        reader.start()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !reader.isFinished { usleep(1000) }
        return Result(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                      errors: String(decoding: errorData, as: UTF8.self))
    }
}
