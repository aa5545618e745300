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

    /// `mpirun` when Open MPI is installed (scripts/setup --tests installs it), else nil.
    public static var mpirun: String? {
        ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `gigapatch-NAME` as `ranks` MPI ranks on this machine over TCP on the loopback interface (the network
    /// path that several machines use), as root if need be; gives up after `timeout` seconds (a hung job fails).
    public static func mpi(_ ranks: Int, _ name: String, _ arguments: [String], environment: [String: String] = [:],
                           timeout: Double = 300) throws -> Result {
        guard let mpirun, let folder = directory else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "install Open MPI and build the executables first (scripts/test does)"])
        }
        let process = Process(), output = Pipe(), errors = Pipe()
        process.executableURL = URL(fileURLWithPath: mpirun)
        var forwarded: [String] = []
        for key in environment.keys.sorted() { forwarded += ["-x", key] }
        process.arguments = ["-np", String(ranks), "--oversubscribe", "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", "lo",
                             "--mca", "oob_tcp_if_include", "lo"] + forwarded + [folder + "/" + (name.isEmpty ? "gigapatch" : "gigapatch-\(name)")] + arguments
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = env
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        nonisolated(unsafe) var errorData = Data(), outputData = Data()
        let readErrors = Thread { errorData = errors.fileHandleForReading.readDataToEndOfFile() }
        let readOutput = Thread { outputData = output.fileHandleForReading.readDataToEndOfFile() }
        readErrors.start()
        readOutput.start()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        let hung = process.isRunning
        if hung { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        while !readErrors.isFinished || !readOutput.isFinished { usleep(1000) }
        return Result(status: hung ? -1 : process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                      errors: (hung ? "timed out after \(Int(timeout)) s\n" : "") + String(decoding: errorData, as: UTF8.self))
    }
}
