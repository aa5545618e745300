import Foundation
@testable import NN
import Seeded
import Testing

/// oneDNN's bf16 convolutions (`OneDNN`, `CDNNL`) against Gigapatch's own unrolled bf16 path. Both round the input,
/// the weights and the output gradient to bfloat16 and sum exact products in float32, so they may differ only by
/// float32 summation order: far tighter than the bf16-against-fp32 bound (`BFloat16LayerTests` checks that one, and the
/// own path's gradients are checked against finite differences in float32). Skipped, saying so, without oneDNN.
struct OneDNNTests {
    static let skipNote = "oneDNN is not available here (\(OneDNN.summary)): oneDNN convolution tests skipped"

    struct Shape: CustomStringConvertible, Sendable {
        let n: Int, c: Int, h: Int, w: Int, o: Int, k: Int, stride: Int, padding: Int, dilation: Int, bias: Bool
        var description: String { "\(n)x\(c)x\(h)x\(w) -> \(o), \(k)x\(k)/\(stride) pad \(padding) dil \(dilation)\(bias ? " bias" : "")" }
    }

    static let shapes: [Shape] = [
        Shape(n: 2, c: 8, h: 16, w: 16, o: 16, k: 3, stride: 1, padding: 1, dilation: 1, bias: false),
        Shape(n: 3, c: 16, h: 9, w: 13, o: 24, k: 3, stride: 2, padding: 1, dilation: 1, bias: true),
        Shape(n: 1, c: 32, h: 7, w: 7, o: 17, k: 3, stride: 1, padding: 0, dilation: 1, bias: false),
        Shape(n: 2, c: 9, h: 12, w: 11, o: 12, k: 5, stride: 1, padding: 4, dilation: 2, bias: false),
        Shape(n: 2, c: 12, h: 20, w: 20, o: 8, k: 7, stride: 2, padding: 3, dilation: 1, bias: false),
        // 16-channel multiples in and out: x and dy cross in the layout Gigapatch converts to itself (OneDNN.blocked16)
        Shape(n: 2, c: 16, h: 10, w: 9, o: 32, k: 3, stride: 1, padding: 1, dilation: 1, bias: false),
    ]

    /// One forward and backward of `shape` in bf16; weight (and bias) gradients start from `start` to see them add up.
    static func run(_ shape: Shape, oneDNN: Bool, inputGradient: Bool = true, seed: UInt64 = 5, start: Float = 0.25,
                    ownConversions: Bool = true) -> (y: [Float], dx: [Float], grads: [Float], layer: Conv2d) {
        var rng = SplitMix64(seed: seed)
        let x = (0 ..< shape.n * shape.c * shape.h * shape.w).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let store = ParameterStore()
        let conv = Conv2d(store, "c", in: shape.c, out: shape.o, kernel: shape.k, stride: shape.stride, padding: shape.padding,
                          dilation: shape.dilation, bias: shape.bias)
        conv.oneDNN = oneDNN
        conv.convertsForOneDNN = ownConversions
        conv.winograd = .never   // the own reference path: unrolled products, no transforms to round
        conv.computesInputGradient = inputGradient
        store.finalize(seed: 9)
        let ctx = Context(training: true, precision: .bf16)
        let y = conv.forward(Tensor(shape: [shape.n, shape.c, shape.h, shape.w], values: x), ctx)
        let dy = (0 ..< y.count).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        for i in 0 ..< store.parameterCount { store.gradients[i] = start }
        let dx = conv.backward(Tensor(shape: y.shape, values: dy), ctx)
        return (y.array, dx.array, Array(store.gradients), conv)
    }

    /// The largest difference relative to the largest magnitude (float32 sums of up to c k k bf16 products).
    static func worst(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        let scale = max(a.map(abs).max() ?? 0, 1e-3)
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
    }

    @Test(arguments: shapes)
    func matchesOwnBF16Path(_ shape: Shape) throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let theirs = Self.run(shape, oneDNN: true), ours = Self.run(shape, oneDNN: false)
        #expect(theirs.layer.oneDNNImplementation?.isEmpty == false, "\(shape): did not run on oneDNN")
        #expect(ours.layer.oneDNNImplementation == nil, "\(shape): ran on oneDNN though turned off")
        for (what, a, b) in [("output", theirs.y, ours.y), ("input gradient", theirs.dx, ours.dx), ("parameter gradients", theirs.grads, ours.grads)] {
            let error = Self.worst(a, b)
            #expect(error < 2e-5, "\(shape) \(what): oneDNN differs from the own bf16 path by \(error) of its scale")
        }
        // Both are bf16: neither may equal float32 (which would mean a path silently ran in float32).
        var rng = SplitMix64(seed: 5)
        let x = (0 ..< shape.n * shape.c * shape.h * shape.w).map { _ in Float.random(in: -1 ... 1, using: &rng) }
        let store = ParameterStore()
        let conv = Conv2d(store, "c", in: shape.c, out: shape.o, kernel: shape.k, stride: shape.stride, padding: shape.padding,
                          dilation: shape.dilation, bias: shape.bias)
        store.finalize(seed: 9)
        let full = conv.forward(Tensor(shape: [shape.n, shape.c, shape.h, shape.w], values: x), Context(training: false)).array
        #expect(theirs.y != full, "\(shape): oneDNN's bf16 output equals float32's exactly")
    }

    /// Gigapatch's own conversion to oneDNN's layout (kept from forward for the weight gradient) gives the same floats
    /// as oneDNN's reorders, with and without the input gradient.
    @Test func ownConversionsGiveTheSameFloats() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        for shape in Self.shapes where shape.c % 16 == 0 {
            for inputGradient in [true, false] {
                let own = Self.run(shape, oneDNN: true, inputGradient: inputGradient)
                let theirs = Self.run(shape, oneDNN: true, inputGradient: inputGradient, ownConversions: false)
                #expect(own.y == theirs.y && own.dx == theirs.dx && own.grads == theirs.grads,
                        "\(shape), input gradient \(inputGradient): own conversions changed the floats")
            }
        }
    }

    /// The conversion kernel against its plain reference, on a tail of pixels (p not a multiple of 16) and on values
    /// whose rounding is special: ties to even, NaN, infinities, subnormals (signed zero), the largest float.
    @Test func blocked16MatchesReference() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        var rng = SplitMix64(seed: 11)
        let special: [Float] = [.nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNormalMagnitude / 2, .greatestFiniteMagnitude,
                                Float(bitPattern: 0x3f80_8000), Float(bitPattern: 0x3f81_8000), -0.0, Float(bitPattern: 0x0000_1234)]
        for (n, c, h, w) in [(2, 16, 5, 7), (1, 32, 4, 4), (3, 48, 1, 19)] {
            var values = (0 ..< n * c * h * w).map { _ in Float.random(in: -3 ... 3, using: &rng) }
            for (i, v) in special.enumerated() where i * 7 < values.count { values[i * 7] = v }
            let x = Tensor(shape: [n, c, h, w], values: values)
            let kernel = OneDNN.blocked16(x), reference = OneDNN.blocked16(x, reference: true)
            #expect(kernel.buffer.map(\.bitPattern) == reference.buffer.map(\.bitPattern), "\(n)x\(c)x\(h)x\(w)")
            // The layout: channel ch of pixel i of image b at ((b * c / 16 + ch / 16) * h * w + i) * 16 + ch % 16.
            let halves = UnsafeRawPointer(kernel.pointer).assumingMemoryBound(to: UInt16.self), p = h * w
            let b = n - 1, ch = c - 3, i = p - 1
            let rounded = BFloat16.rounded([values[(b * c + ch) * p + i]])[0]
            #expect(UInt32(halves[((b * c / 16 + ch / 16) * p + i) * 16 + ch % 16]) << 16 == rounded.bitPattern)
        }
    }

    /// A first layer's backward (no input gradient) gives the same weight gradient and zeros for dx; the weight
    /// gradient adds to what the store held.
    @Test func weightGradientOnlyAndAccumulation() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let shape = Self.shapes[1]
        let with = Self.run(shape, oneDNN: true), without = Self.run(shape, oneDNN: true, inputGradient: false)
        let fromZero = Self.run(shape, oneDNN: true, start: 0)
        #expect(Self.worst(with.grads, without.grads) == 0, "the weight gradient changed when the input gradient was skipped")
        #expect(without.dx.allSatisfy { $0 == 0 })
        #expect(with.dx.contains { $0 != 0 })
        let added = fromZero.grads.map { $0 + 0.25 }
        #expect(Self.worst(with.grads, added) < 1e-6, "the weight gradient did not add to the store's")
    }

    /// 1x1 convolutions and first layers on RGB stay on the own kernels (measured faster there: BENCHMARKS.md), and so
    /// does float32.
    @Test func whereOneDNNRuns() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let store = ParameterStore()
        let pointwise = Conv2d(store, "p", in: 16, out: 16, kernel: 1, stride: 2), rgb = Conv2d(store, "r", in: 3, out: 16, kernel: 3, padding: 1)
        let square = Conv2d(store, "s", in: 16, out: 16, kernel: 3, padding: 1)
        store.finalize(seed: 1)
        let x16 = Tensor(shape: [1, 16, 8, 8], values: [Float](repeating: 0.5, count: 1024))
        _ = square.forward(x16, Context(training: false))
        #expect(square.oneDNNImplementation == nil, "float32 ran on oneDNN")
        _ = square.forward(x16, Context(training: false, precision: .bf16))
        _ = pointwise.forward(x16, Context(training: false, precision: .bf16))
        _ = rgb.forward(Tensor(shape: [1, 3, 8, 8], values: [Float](repeating: 0.5, count: 192)), Context(training: false, precision: .bf16))
        #expect(square.oneDNNImplementation != nil)
        #expect(pointwise.oneDNNImplementation == nil && rgb.oneDNNImplementation == nil)
    }

    /// One layer sees several batch sizes (PatchGD's fill and recompute passes): each gets its own primitives, and
    /// going back to an earlier size gives the earlier result exactly.
    @Test func batchSizesChangeBetweenCalls() throws {
        if !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        if !OneDNN.isAvailable { try Test.cancel(Comment(rawValue: Self.skipNote)) }
        let store = ParameterStore()
        let conv = Conv2d(store, "c", in: 8, out: 8, kernel: 3, padding: 1, bias: false)
        store.finalize(seed: 4)
        let ctx = Context(training: false, precision: .bf16)
        var rng = SplitMix64(seed: 6)
        var outputs: [[Float]] = []
        let inputs = [1, 3, 1, 6, 2, 5, 1].map { n in Tensor(shape: [n, 8, 10, 10], values: (0 ..< n * 800).map { _ in Float.random(in: -1 ... 1, using: &rng) }) }
        for x in inputs { outputs.append(conv.forward(x, ctx).array) }
        conv.oneDNN = false
        conv.winograd = .never
        for (x, y) in zip(inputs, outputs) { #expect(Self.worst(y, conv.forward(x, ctx).array) < 2e-5) }
    }
}
