import Foundation

/// Memory for floats, owned by one allocation; tensors that are reshaped views share it.
///
/// Allocations come from `StoragePool`: a training step frees and re-allocates the same activation sizes
/// every time, and reusing them avoids the page faults of fresh memory (a third of a step's time otherwise).
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    init(count: Int, zeroed: Bool) {
        pointer = StoragePool.shared.take(count)
        self.count = count
        if zeroed { pointer.update(repeating: 0, count: count) }
    }

    deinit { StoragePool.shared.give(pointer, count) }
}

/// Keeps freed tensor buffers by exact size for reuse, up to a limit of bytes held.
public final class StoragePool: @unchecked Sendable {
    public static let shared = StoragePool()
    /// Bytes the pool may keep while idle (default 2 GiB); beyond it freed buffers go back to the system.
    public var limit = 2 << 30
    private var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    private var held = 0
    private var live = 0
    private var livePeak = 0
    private let lock = NSLock()

    /// Bytes of tensors alive now, and the most alive at once since `resetPeak` (the process's whole tensor memory:
    /// activations kept for backward, transients, Z; not parameters, which live in their stores).
    public var liveBytes: Int { lock.withLock { live } }
    public var peakLiveBytes: Int { lock.withLock { livePeak } }
    public func resetPeak() { lock.withLock { livePeak = live } }

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(1, count)
        if let p = lock.withLock({ () -> UnsafeMutablePointer<Float>? in
            live += n * 4
            livePeak = max(livePeak, live)
            guard let p = free[n]?.popLast() else { return nil }
            held -= n * 4
            return p
        }) { return p }
        return .allocate(capacity: n)
    }

    func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = max(1, count)
        let kept = lock.withLock { () -> Bool in
            live -= n * 4
            guard held + n * 4 <= limit else { return false }
            free[n, default: []].append(p)
            held += n * 4
            return true
        }
        if !kept { p.deallocate() }
    }

    /// Returns every held buffer to the system.
    public func drain() {
        let all = lock.withLock { () -> [UnsafeMutablePointer<Float>] in
            defer { free = [:]; held = 0 }
            return free.values.flatMap { $0 }
        }
        for p in all { p.deallocate() }
    }
}

/// A float32 array with a shape (NCHW for images, (N, features) for vectors), row-major and contiguous.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage

    /// A zero-filled tensor.
    public init(shape: [Int]) {
        self.shape = shape
        storage = Storage(count: shape.reduce(1, *), zeroed: true)
    }

    /// A tensor whose contents the caller overwrites entirely (no zero fill).
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        storage = Storage(count: shape.reduce(1, *), zeroed: false)
    }

    /// A tensor holding `values`.
    public init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "shape \(shape) needs \(shape.reduce(1, *)) values, got \(values.count)")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    init(shape: [Int], storage: Storage) {
        self.shape = shape
        self.storage = storage
    }

    public var count: Int { storage.count }
    /// The first pointer of the data; take it once outside a loop.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: storage.pointer, count: storage.count) }
    public var array: [Float] { Array(buffer) }

    /// The same data seen with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: newShape, storage: storage)
    }

    /// A copy with its own storage.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.pointer.update(from: pointer, count: count)
        return out
    }

    /// Sizes of an NCHW tensor.
    public var nchw: (n: Int, c: Int, h: Int, w: Int) {
        precondition(shape.count == 4, "expected an NCHW tensor, got shape \(shape)")
        return (shape[0], shape[1], shape[2], shape[3])
    }
}
