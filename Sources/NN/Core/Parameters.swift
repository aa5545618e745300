import Foundation
import Seeded

/// How a parameter is filled when a model is created (PyTorch's defaults for each layer).
public enum Initializer: Sendable, Equatable {
    case zeros
    case ones
    /// Uniform in [-bound, bound] (PyTorch's default for conv and linear: bound = 1/sqrt(fan_in) for bias, kaiming-uniform a=sqrt(5) for weights).
    case uniform(bound: Float)
    /// Normal with mean 0 and this standard deviation (torchvision's kaiming_normal fan_out for ResNet convs).
    case normal(std: Float)
}

/// Every parameter and buffer of a model in contiguous storage with named views (PyTorch state_dict names).
///
/// Parameters, their gradients, and the optimizer's moments are each one buffer of `parameterCount` floats,
/// so an optimizer step is one loop and a checkpoint one write. Buffers (BatchNorm running statistics) live
/// in a second contiguous block; counters (`num_batches_tracked`) are 64-bit integers.
public final class ParameterStore: @unchecked Sendable {
    public enum Kind: Sendable { case parameter, buffer, counter }

    /// One named tensor: where it lives and its shape.
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let kind: Kind
        /// Offset in the parameter or buffer block (counters: index in `counters`).
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
        let initializer: Initializer
    }

    public private(set) var entries: [Entry] = []
    public private(set) var parameterCount = 0
    public private(set) var bufferCount = 0
    /// Values, gradients, buffers: allocated by `finalize`.
    public private(set) var values: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)
    public private(set) var gradients: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)
    public private(set) var buffers: UnsafeMutableBufferPointer<Float> = .init(start: nil, count: 0)
    public var counters: [Int64] = []
    private var byName: [String: Int] = [:]

    public init() {}

    deinit {
        values.deallocate()
        gradients.deallocate()
        buffers.deallocate()
    }

    /// Declares a tensor; returns its offset in its block. Names must be unique.
    @discardableResult
    public func declare(_ name: String, shape: [Int], kind: Kind = .parameter, initializer: Initializer = .zeros) -> Int {
        precondition(values.baseAddress == nil, "declare \(name) before finalize()")
        precondition(byName[name] == nil, "duplicate parameter name \(name)")
        let count = shape.reduce(1, *)
        let offset: Int
        switch kind {
        case .parameter: offset = parameterCount; parameterCount += count
        case .buffer: offset = bufferCount; bufferCount += count
        case .counter: offset = counters.count; counters.append(0)
        }
        byName[name] = entries.count
        entries.append(Entry(name: name, shape: shape, kind: kind, offset: offset, initializer: initializer))
        return offset
    }

    /// Allocates the blocks and fills every tensor with its initializer, drawing from `seed`.
    public func finalize(seed: UInt64) {
        values = .allocate(capacity: max(1, parameterCount))
        gradients = .allocate(capacity: max(1, parameterCount))
        buffers = .allocate(capacity: max(1, bufferCount))
        gradients.initialize(repeating: 0)
        buffers.initialize(repeating: 0)
        values.initialize(repeating: 0)
        var rng = SplitMix64(seed: seed)
        for entry in entries where entry.kind != .counter {
            let block = entry.kind == .parameter ? values : buffers
            let p = block.baseAddress! + entry.offset
            switch entry.initializer {
            case .zeros: p.update(repeating: 0, count: entry.count)
            case .ones: p.update(repeating: 1, count: entry.count)
            case .uniform(let bound): for i in 0 ..< entry.count { p[i] = Float.random(in: -bound ... bound, using: &rng) }
            case .normal(let std): for i in 0 ..< entry.count { p[i] = std * Gaussian.next(&rng) }
            }
        }
    }

    /// The entry called `name`, nil when absent.
    public func entry(_ name: String) -> Entry? { byName[name].map { entries[$0] } }

    /// Pointer to a parameter's values (offset from `declare`).
    @inlinable public func value(_ offset: Int) -> UnsafeMutablePointer<Float> { values.baseAddress! + offset }
    /// Pointer to a parameter's gradient.
    @inlinable public func gradient(_ offset: Int) -> UnsafeMutablePointer<Float> { gradients.baseAddress! + offset }
    /// Pointer to a buffer (running statistics).
    @inlinable public func buffer(_ offset: Int) -> UnsafeMutablePointer<Float> { buffers.baseAddress! + offset }

    /// Runs `body` with BatchNorm's batch counters zeroed, so forward passes with `Context.recalibrateBatchNorm`
    /// replace the running statistics with the cumulative average of their batches; the counters are then restored.
    public func recalibratingBatchNorm(_ body: () throws -> Void) rethrows {
        let kept = counters
        for i in counters.indices { counters[i] = 0 }
        defer { counters = kept }
        try body()
    }

    /// Sets every gradient to zero.
    public func zeroGradients() { gradients.update(repeating: 0) }

    /// The contiguous range of parameter offsets whose names start with `prefix` (for optimizer groups).
    public func parameterRanges(prefix: String) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        for e in entries where e.kind == .parameter && e.name.hasPrefix(prefix) {
            if let last = ranges.last, last.upperBound == e.offset {
                ranges[ranges.count - 1] = last.lowerBound ..< e.offset + e.count
            } else {
                ranges.append(e.offset ..< e.offset + e.count)
            }
        }
        return ranges
    }
}

/// Standard normal draws (Box-Muller) from a seeded generator.
public enum Gaussian {
    public static func next(_ rng: inout SplitMix64) -> Float {
        let u1 = Double.random(in: Double.leastNonzeroMagnitude ..< 1, using: &rng), u2 = Double.random(in: 0 ..< 1, using: &rng)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
    }
}
