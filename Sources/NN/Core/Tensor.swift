/// Memory for floats, owned by one allocation; tensors that are reshaped views share it.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    init(count: Int, zeroed: Bool) {
        pointer = .allocate(capacity: max(1, count))
        self.count = count
        if zeroed { pointer.initialize(repeating: 0, count: count) }
    }

    deinit { pointer.deallocate() }
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
