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

/// Carries a value into concurrent code whose safety the caller guarantees (disjoint writes).
@usableFromInline
struct UncheckedSendable<T>: @unchecked Sendable {
    @usableFromInline let value: T
    @usableFromInline init(_ value: T) { self.value = value }
}
