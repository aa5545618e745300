import CMPI
import Foundation

/// The processes of a job: rank, size, and the few collective operations the stages need (sums of float buffers,
/// broadcast, gather, point-to-point bytes for the work queue). Started alone, it is a one-process stand-in whose
/// operations do nothing (a sum over one rank is the buffer itself), so stages call it unconditionally.
///
/// Open MPI is loaded with dlopen only when a launcher started the process (`Launch.detect`): a single process needs
/// neither the library nor its runtime, and binaries run where Open MPI is not installed. MPI calls may come from any
/// thread and are serialised by a lock (MPI_THREAD_SERIALIZED).
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// Started by a launcher (even with one rank); false for the one-process stand-in.
    public let isMPI: Bool
    /// Who started it ("mpirun", "srun (PMIx)", ...), for logs and run records.
    public let launcher: String?
    private let lock = NSLock()

    public var isRoot: Bool { rank == 0 }

    /// The one-process stand-in.
    public static let single = Communicator(rank: 0, size: 1, isMPI: false, launcher: nil)

    private init(rank: Int, size: Int, isMPI: Bool, launcher: String?) {
        self.rank = rank
        self.size = size
        self.isMPI = isMPI
        self.launcher = launcher
    }

    /// The library loaded under a launcher: `GIGAPATCH_LIBMPI`, else Open MPI's `libmpi.so.40`.
    public static var libraryName: String { ProcessInfo.processInfo.environment["GIGAPATCH_LIBMPI"] ?? "libmpi.so.40" }

    nonisolated(unsafe) private static var cached: Communicator?
    private static let cacheLock = NSLock()

    /// This process's communicator: MPI's world when a launcher started it, else `single`. Initialises MPI once.
    /// - Throws: `ClusterError` when a launcher started the process but Open MPI cannot be loaded or initialised.
    public static func world() throws -> Communicator {
        try cacheLock.withLock {
            if let cached { return cached }
            let made: Communicator
            switch Launch.detect(ProcessInfo.processInfo.environment) {
            case .single: made = .single
            case .mpi(_, let expected, let launcher):
                var error = [CChar](repeating: 0, count: 1024)
                guard gp_mpi_open(libraryName, &error, Int32(error.count)) == 0 else {
                    throw ClusterError("started by \(launcher) but the MPI library \(libraryName) could not be loaded (\(Self.text(error))); install Open MPI (Debian: apt-get install openmpi-bin) or set GIGAPATCH_LIBMPI to its libmpi.so", kind: .missingFile)
                }
                var rank: Int32 = 0, size: Int32 = 0
                let rc = gp_mpi_init(&rank, &size)
                guard rc == 0 else { throw ClusterError("MPI_Init_thread failed under \(launcher): \(describe(rc))") }
                if expected > 0 && Int(size) != expected {
                    FileHandle.standardError.write(Data("note: the launcher announced \(expected) ranks, MPI reports \(size)\n".utf8))
                }
                made = Communicator(rank: Int(rank), size: Int(size), isMPI: true, launcher: launcher)
                atexit { _ = gp_mpi_finalize() }
            }
            cached = made
            return made
        }
    }

    static func describe(_ code: Int32) -> String {
        if code == -2 { return "message larger than 2 GiB" }
        var text = [CChar](repeating: 0, count: 512)
        gp_mpi_error_string(code, &text, Int32(text.count))
        return Self.text(text)
    }

    /// A C string held in a CChar array, up to its terminating zero.
    static func text(_ chars: [CChar]) -> String {
        String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func check(_ code: Int32, _ what: @autoclosure () -> String) throws {
        guard code != 0 else { return }
        throw ClusterError("rank \(rank) of \(size): \(what()) failed: \(Self.describe(code))")
    }

    // MARK: Collectives (every rank calls them in the same order)

    /// Sums `buffer` over all ranks, in place.
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        guard size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
        try lock.withLock { try check(gp_mpi_allreduce_sum_float(base, buffer.count), "all-reduce of \(buffer.count) floats") }
    }

    /// Sums `values` over all ranks.
    public func allReduceSum(_ values: [Double]) throws -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var out = values
        try lock.withLock {
            try out.withUnsafeMutableBufferPointer { try check(gp_mpi_allreduce_sum_double($0.baseAddress!, $0.count), "all-reduce of \($0.count) numbers") }
        }
        return out
    }

    /// Copies `root`'s bytes into every rank's buffer (the same size on every rank).
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int = 0) throws {
        guard size > 1, let base = buffer.baseAddress, buffer.count > 0 else { return }
        try lock.withLock { try check(gp_mpi_bcast(base, buffer.count, Int32(root)), "broadcast of \(buffer.count) bytes") }
    }

    /// `root`'s bytes on every rank, whatever their size (the others pass anything).
    public func broadcast(bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        guard size > 1 else { return bytes }
        var count = Int64(bytes.count)
        try withUnsafeMutableBytes(of: &count) { try broadcast($0, root: root) }
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count))
        try out.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return out
    }

    /// Every rank's bytes, in rank order, on `root` (nil elsewhere).
    public func gather(_ bytes: [UInt8], root: Int = 0) throws -> [[UInt8]]? {
        guard size > 1 else { return [bytes] }
        if rank != root {
            try send(bytes, to: root, tag: Tags.gather)
            return nil
        }
        var all: [[UInt8]] = []
        for r in 0 ..< size { all.append(r == root ? bytes : try receive(from: r, tag: Tags.gather).bytes) }
        return all
    }

    public func barrier() throws {
        guard size > 1 else { return }
        try lock.withLock { try check(gp_mpi_barrier(), "barrier") }
    }

    // MARK: Point to point

    enum Tags {
        static let gather: Int32 = 7
    }

    public func send(_ bytes: [UInt8], to destination: Int, tag: Int32) throws {
        guard size > 1 else { throw ClusterError("send to rank \(destination) in a job of one process") }
        try lock.withLock {
            try bytes.withUnsafeBytes { try check(gp_mpi_send($0.baseAddress, $0.count, Int32(destination), tag), "send of \($0.count) bytes to rank \(destination)") }
        }
    }

    /// The next message from `source` (nil: any) with `tag`, waiting for it without holding the lock (other threads of
    /// this rank keep sending while one waits).
    public func receive(from source: Int?, tag: Int32) throws -> (source: Int, bytes: [UInt8]) {
        while true {
            if let message = try poll(from: source, tag: tag) { return message }
            usleep(100)
        }
    }

    /// A waiting message from `source` (nil: any) with `tag`, or nil.
    public func poll(from source: Int?, tag: Int32) throws -> (source: Int, bytes: [UInt8])? {
        guard size > 1 else { return nil }
        return try lock.withLock {
            var flag: Int32 = 0, from: Int32 = 0, got: Int32 = 0, count = 0
            try check(gp_mpi_iprobe(Int32(source ?? -1), tag, &flag, &from, &got, &count), "probe")
            guard flag != 0 else { return nil }
            var bytes = [UInt8](repeating: 0, count: count)
            try bytes.withUnsafeMutableBytes { try check(gp_mpi_recv($0.baseAddress, count, from, tag), "receive of \(count) bytes from rank \(from)") }
            return (Int(from), bytes)
        }
    }

    // MARK: Failure

    /// Ends the whole job after a rank's error: prints it with the rank on standard error, then MPI_Abort (every rank
    /// stops; the launcher reports the exit status). The stand-in just exits.
    public func abort(_ message: String, program: String, code: Int32 = 1) -> Never {
        let who = isMPI ? "\(program) (rank \(rank) of \(size))" : program
        FileHandle.standardError.write(Data("\(who): error: \(message)\n".utf8))
        if isMPI && size > 1 { gp_mpi_abort(code) }
        exit(code)
    }
}
