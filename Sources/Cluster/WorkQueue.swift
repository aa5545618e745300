import Foundation

/// Tasks handed out one at a time by rank 0 to whichever worker asks next, so ranks that draw small slides take more
/// of them (slides differ 100x in size; a static split leaves ranks idle). Every rank, rank 0 included, works on
/// `threads` threads; only rank 0 sees the results, in the order they finish, so one writer records them.
///
/// Protocol: a worker thread sends rank 0 a request carrying its last result; rank 0 answers with the next task or
/// "none left"; when all of a rank's threads are told "none left", the rank says it is done. Rank 0 returns once
/// every rank is done and every task's result is collected.
public enum WorkQueue {
    static let requestTag: Int32 = 11
    static let doneTag: Int32 = 12
    /// Replies to thread t of a rank use this tag + t, so a rank's threads never take each other's replies.
    static let replyTag: Int32 = 100

    /// - Parameters:
    ///   - threads: worker threads on each rank (at least 1).
    ///   - next: rank 0, on the calling thread: the next task (id >= 0 and payload), nil when none are left.
    ///   - work: every rank, on its worker threads: a task's id and payload to its result (errors go in the result).
    ///   - collect: rank 0, on the calling thread: a finished task's id and result.
    public static func run(_ comm: Communicator, threads: Int, next: () throws -> (id: Int, payload: [UInt8])?,
                           work: @escaping @Sendable (Int, [UInt8]) -> [UInt8], collect: (Int, [UInt8]) throws -> Void) throws {
        let threads = max(1, threads)
        if comm.isRoot { try coordinate(comm, threads: threads, next: next, work: work, collect: collect) }
        else { try serve(comm, threads: threads, work: work) }
    }

    private static func coordinate(_ comm: Communicator, threads: Int, next: () throws -> (id: Int, payload: [UInt8])?,
                                   work: @escaping @Sendable (Int, [UInt8]) -> [UInt8], collect: (Int, [UInt8]) throws -> Void) throws {
        let pool = LocalPool(threads: threads, work: work)
        defer { pool.close() }
        var exhausted = false, local = 0, ranksDone = 0
        func take() throws -> (id: Int, payload: [UInt8])? {
            guard !exhausted else { return nil }
            if let task = try next() { return task }
            exhausted = true
            return nil
        }
        while true {
            var busy = false
            while local < threads, let task = try take() {
                pool.submit(task)
                local += 1
                busy = true
            }
            for (id, result) in pool.drain() {
                local -= 1
                busy = true
                try collect(id, result)
            }
            while let message = try comm.poll(from: nil, tag: requestTag) {
                busy = true
                var reader = Reader(message.bytes)
                let thread = Int32(reader.int()), finished = reader.int()
                if finished >= 0 { try collect(finished, reader.rest()) }
                let task = try take()
                try comm.send(encode(task?.id ?? -1, bytes: task?.payload ?? []), to: message.source, tag: replyTag + thread)
            }
            while try comm.poll(from: nil, tag: doneTag) != nil {
                ranksDone += 1
                busy = true
            }
            if exhausted && local == 0 && ranksDone == comm.size - 1 { return }
            if !busy { usleep(200) }
        }
    }

    private static func serve(_ comm: Communicator, threads: Int, work: @escaping @Sendable (Int, [UInt8]) -> [UInt8]) throws {
        let failure = FirstError()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            do {
                var finished: (id: Int, result: [UInt8])?
                while true {
                    try comm.send(encode(t, finished?.id ?? -1, bytes: finished?.result ?? []), to: 0, tag: requestTag)
                    var reader = Reader(try comm.receive(from: 0, tag: replyTag + Int32(t)).bytes)
                    let id = reader.int()
                    if id < 0 { break }
                    finished = (id, work(id, reader.rest()))
                }
            } catch { failure.record(error) }
        }
        if let error = failure.error { throw error }
        try comm.send([], to: 0, tag: doneTag)
    }

    static func encode(_ numbers: Int..., bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * numbers.count + bytes.count)
        for n in numbers { withUnsafeBytes(of: Int64(n).littleEndian) { out += $0 } }
        return out + bytes
    }


    /// Reads the little-endian integers `encode` wrote, then the rest.
    struct Reader {
        let bytes: [UInt8]
        var offset = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        mutating func int() -> Int {
            var value: Int64 = 0
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[offset ..< offset + 8]) }
            offset += 8
            return Int(Int64(littleEndian: value))
        }
        func rest() -> [UInt8] { Array(bytes[offset...]) }
    }
}

/// Rank 0's own worker threads: tasks in, results out, through locked lists.
private final class LocalPool: @unchecked Sendable {
    private let lock = NSCondition()
    private var pending: [(id: Int, payload: [UInt8])] = []
    private var results: [(Int, [UInt8])] = []
    private var closed = false
    private let group = DispatchGroup()

    init(threads: Int, work: @escaping @Sendable (Int, [UInt8]) -> [UInt8]) {
        for _ in 0 ..< threads {
            group.enter()
            Thread.detachNewThread { [self] in
                defer { group.leave() }
                while let task = take() {
                    let result = work(task.id, task.payload)
                    lock.withLock { results.append((task.id, result)) }
                }
            }
        }
    }

    private func take() -> (id: Int, payload: [UInt8])? {
        lock.lock()
        defer { lock.unlock() }
        while pending.isEmpty && !closed { lock.wait() }
        return pending.isEmpty ? nil : pending.removeFirst()
    }

    func submit(_ task: (id: Int, payload: [UInt8])) {
        lock.withLock { pending.append(task) }
        lock.signal()
    }

    func drain() -> [(Int, [UInt8])] {
        lock.withLock {
            defer { results = [] }
            return results
        }
    }

    func close() {
        lock.withLock { closed = true }
        lock.broadcast()
        group.wait()
    }
}

/// The first error thrown by concurrent work (the work queue's threads, the patch reader's).
public final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var error: Error?
    public init() {}
    public func record(_ e: Error) { lock.withLock { if error == nil { error = e } } }
}
