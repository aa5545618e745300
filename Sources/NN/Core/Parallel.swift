import Foundation

/// Splits loops over the cores; BLAS calls use OpenBLAS's own threads instead.
public enum Parallel {
    /// Number of worker threads for elementwise and reduction loops (default: active cores).
    nonisolated(unsafe) public static var threads = ProcessInfo.processInfo.activeProcessorCount

    /// Runs `body` over contiguous chunks of `0 ..< count`, in parallel when the work is large enough.
    ///
    /// - Parameter grain: below `grain` items per thread the loop stays on the calling thread.
    @inlinable
    public static func forRange(_ count: Int, grain: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = min(threads, max(1, count / max(1, grain)))
        if chunks <= 1 {
            body(0 ..< count)
            return
        }
        withoutActuallyEscaping(body) { body in
            // The chunks touch disjoint ranges; the caller's closure is shared across threads by design.
            let shared = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: chunks) { i in
                shared.value(count * i / chunks ..< count * (i + 1) / chunks)
            }
        }
    }
}

extension Parallel {
    /// Splits `0 ..< count` into `workers` contiguous ranges and runs `body(worker, range)` for each, in parallel.
    /// Worker w always gets the same range, so results kept per worker (partial sums, scratch) and combined in worker
    /// order repeat bit for bit. `workers` should not exceed `threads`.
    @inlinable
    public static func forWorkers(_ count: Int, workers: Int, _ body: (_ worker: Int, _ range: Range<Int>) -> Void) {
        guard workers > 1 else {
            body(0, 0 ..< count)
            return
        }
        forRange(workers) { r in
            for worker in r { body(worker, count * worker / workers ..< count * (worker + 1) / workers) }
        }
    }
}

/// Carries a value into concurrent code whose safety the caller guarantees (disjoint writes).
@usableFromInline
struct UncheckedSendable<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
