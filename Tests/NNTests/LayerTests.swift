import Foundation
import NN
import Seeded
import Testing

typealias A4 = Reference.Array4

/// Reference input as NCHW.
func nchw(_ v: [Double], _ s: [Int]) -> A4 { A4(n: s[0], c: s[1], h: s[2], w: s[3], v: v) }

func convCase(_ name: String, n: Int = 2, c: Int, h: Int, w: Int, o: Int, k: Int, s: Int = 1, p: Int = 0, d: Int = 1, g: Int = 1, bias: Bool = true,
              configure: @escaping (Conv2d) -> Void = { _ in }) -> LayerCase {
    LayerCase(name: name, inputShape: [n, c, h, w], training: true,
              make: { let conv = Conv2d($0, "conv", in: c, out: o, kernel: k, stride: s, padding: p, dilation: d, groups: g, bias: bias); configure(conv); return conv },
              reference: { x, q in Reference.conv2d(nchw(x, [n, c, h, w]), weight: q["conv.weight"]!, bias: q["conv.bias"] ?? [],
                                                   out: o, kernel: k, stride: s, padding: p, dilation: d, groups: g).v })
}

/// An `AdaptiveStrideConv2d` (3x3, stride 2, padding 1) on an n x 2 x h x w input, against the reference convolution
/// at the stride it should choose.
func adaptiveCase(_ name: String, h: Int, w: Int, strided: Bool) -> LayerCase {
    LayerCase(name: name, inputShape: [2, 2, h, w], training: true,
              make: { let layer = AdaptiveStrideConv2d(Conv2d($0, "conv", in: 2, out: 3, kernel: 3, stride: 2, padding: 1))
                      precondition(layer.strides(h: h, w: w) == strided); return layer },
              reference: { x, q in Reference.conv2d(nchw(x, [2, 2, h, w]), weight: q["conv.weight"]!, bias: q["conv.bias"]!,
                                                   out: 3, kernel: 3, stride: strided ? 2 : 1, padding: 1, dilation: 1, groups: 1).v })
}

struct LayerGradientTests {
    static let cases: [LayerCase] = [
        convCase("conv 3x3 s1 p1 (Winograd)", c: 3, h: 6, w: 5, o: 4, k: 3, p: 1, configure: { $0.winograd = .always }),
        convCase("conv 3x3 s1 p1 unrolled", c: 3, h: 6, w: 5, o: 4, k: 3, p: 1, configure: { $0.winograd = .never }),
        convCase("Winograd odd plane 7 x 9", n: 3, c: 2, h: 7, w: 9, o: 3, k: 3, p: 1, bias: false, configure: { $0.winograd = .always }),
        convCase("Winograd a full vector of tiles and a tail (21 wide)", n: 1, c: 2, h: 5, w: 21, o: 2, k: 3, p: 1,
                 configure: { $0.winograd = .always }),
        convCase("Winograd straight into the output (16 wide, odd height)", c: 2, h: 5, w: 16, o: 3, k: 3, p: 1, configure: { $0.winograd = .always }),
        convCase("Winograd spread over the cores in blocks of one tile row", n: 3, c: 2, h: 6, w: 7, o: 3, k: 3, p: 1,
                 configure: { $0.winograd = .always; $0.winogradLimit = 16 * 3 * 4 }),
        convCase("Winograd in blocks of one tile row, one per worker (16 x 17)", n: 2, c: 2, h: 16, w: 17, o: 3, k: 3, p: 1,
                 configure: { $0.winogradBlockTiles = 9 }),
        convCase("Winograd in blocks of three tile rows across images", n: 2, c: 2, h: 16, w: 16, o: 2, k: 3, p: 1, bias: false,
                 configure: { $0.winogradBlockTiles = 24 }),
        convCase("conv 3x3 s2 p1 no bias", c: 3, h: 7, w: 6, o: 4, k: 3, s: 2, p: 1, bias: false),
        convCase("conv 1x1 batch 1", n: 1, c: 4, h: 3, w: 4, o: 5, k: 1),
        convCase("conv 1x1 per-image path, GEMM on the input in place (16 x 17)", c: 3, h: 16, w: 17, o: 4, k: 1),
        convCase("conv 1x1 per-image path, whole images per worker, bands of 5 rows", n: 4, c: 2, h: 16, w: 16, o: 3, k: 1, bias: false,
                 configure: { $0.unrollLimit = 2 * 16 * 5 }),
        convCase("conv 1x1 s2 (downsample)", c: 4, h: 5, w: 5, o: 6, k: 1, s: 2, bias: false),
        convCase("conv 3x3 dilation 2", c: 2, h: 7, w: 7, o: 3, k: 3, p: 2, d: 2),
        convCase("conv groups 2", c: 4, h: 5, w: 4, o: 6, k: 3, p: 1, g: 2),
        convCase("depthwise 3x3 s1", c: 4, h: 5, w: 6, o: 4, k: 3, p: 1, g: 4),
        convCase("depthwise 3x3 s2 multiplier 2", c: 3, h: 7, w: 6, o: 6, k: 3, s: 2, p: 1, g: 3, bias: false),
        convCase("depthwise 3x3 s1, a full vector and a tail (5 x 11)", c: 3, h: 5, w: 11, o: 3, k: 3, p: 1, g: 3, bias: false),
        convCase("depthwise 3x3 s2, odd width 19", n: 1, c: 2, h: 6, w: 19, o: 2, k: 3, s: 2, p: 1, g: 2),
        convCase("depthwise 3x3 s1, general loops", c: 3, h: 5, w: 6, o: 3, k: 3, p: 1, g: 3, configure: { $0.fastDepthwise = false }),
        convCase("depthwise 3x3 s2 multiplier 2, general loops", c: 3, h: 7, w: 6, o: 6, k: 3, s: 2, p: 1, g: 3, bias: false,
                 configure: { $0.fastDepthwise = false }),
        convCase("depthwise 5x5 p2 (general loops only)", n: 1, c: 2, h: 6, w: 7, o: 2, k: 5, p: 2, g: 2),
        convCase("conv 3x3 per-image path (16x16 output)", c: 2, h: 16, w: 16, o: 3, k: 3, p: 1, configure: { $0.winograd = .never }),
        LayerCase(name: "conv 3x3 per-image path in bands of one row", inputShape: [2, 2, 16, 16], training: true,
                  make: { let conv = Conv2d($0, "conv", in: 2, out: 3, kernel: 3, padding: 1); conv.unrollLimit = 40; conv.winogradLimit = 0; return conv },
                  reference: { x, q in Reference.conv2d(nchw(x, [2, 2, 16, 16]), weight: q["conv.weight"]!, bias: q["conv.bias"]!,
                                                       out: 3, kernel: 3, stride: 1, padding: 1, dilation: 1, groups: 1).v }),
        LayerCase(name: "conv 3x3 s2 per-image path in bands of three rows", inputShape: [1, 2, 36, 34], training: true,
                  make: { let conv = Conv2d($0, "conv", in: 2, out: 3, kernel: 3, stride: 2, padding: 1, bias: false); conv.unrollLimit = 18 * 17 * 3; return conv },
                  reference: { x, q in Reference.conv2d(nchw(x, [1, 2, 36, 34]), weight: q["conv.weight"]!, bias: [],
                                                       out: 3, kernel: 3, stride: 2, padding: 1, dilation: 1, groups: 1).v }),
        convCase("conv 7x7 s2 p3 (stem)", n: 1, c: 3, h: 9, w: 8, o: 2, k: 7, s: 2, p: 3),
        adaptiveCase("adaptive stride on 5 x 4: strided", h: 5, w: 4, strided: true),
        adaptiveCase("adaptive stride on 3 x 6: stride 1, same weights", h: 3, w: 6, strided: false),
        LayerCase(name: "batchnorm train", inputShape: [3, 4, 3, 2], training: true,
                  make: { BatchNorm2d($0, "bn", channels: 4) },
                  reference: { x, q in Reference.batchNorm(nchw(x, [3, 4, 3, 2]), gamma: q["bn.weight"]!, beta: q["bn.bias"]!, running: nil).v }),
        LayerCase(name: "batchnorm eval", inputShape: [2, 3, 2, 2], training: false,
                  make: { BatchNorm2d($0, "bn", channels: 3) },
                  reference: { x, q in Reference.batchNorm(nchw(x, [2, 3, 2, 2]), gamma: q["bn.weight"]!, beta: q["bn.bias"]!,
                                                           running: (q["bn.running_mean"]!, q["bn.running_var"]!)).v }),
        LayerCase(name: "batchnorm + relu fused, train", inputShape: [3, 4, 3, 2], training: true,
                  make: { BatchNorm2d($0, "bn", channels: 4, activation: .relu) },
                  reference: { x, q in Reference.batchNorm(nchw(x, [3, 4, 3, 2]), gamma: q["bn.weight"]!, beta: q["bn.bias"]!, running: nil).v.map { max(0, $0) } }),
        LayerCase(name: "batchnorm + relu6 fused, eval", inputShape: [2, 3, 4, 4], training: false,
                  make: { BatchNorm2d($0, "bn", channels: 3, activation: .relu6) },
                  reference: { x, q in Reference.batchNorm(nchw(x, [2, 3, 4, 4]), gamma: q["bn.weight"]!, beta: q["bn.bias"]!,
                                                           running: (q["bn.running_mean"]!, q["bn.running_var"]!)).v.map { min(6, max(0, $0)) } },
                  inputScale: 8),
        LayerCase(name: "residual block with downsample and fused relu", inputShape: [2, 3, 6, 6], training: true,
                  make: { s in Residual(main: Sequential([Conv2d(s, "a", in: 3, out: 4, kernel: 3, stride: 2, padding: 1, bias: false),
                                                          BatchNorm2d(s, "bn", channels: 4)]),
                                        shortcut: Conv2d(s, "down", in: 3, out: 4, kernel: 1, stride: 2, bias: false), relu: true) },
                  reference: { x, q in
                      let xi = nchw(x, [2, 3, 6, 6])
                      let a = Reference.batchNorm(Reference.conv2d(xi, weight: q["a.weight"]!, bias: [], out: 4, kernel: 3, stride: 2, padding: 1, dilation: 1, groups: 1),
                                                  gamma: q["bn.weight"]!, beta: q["bn.bias"]!, running: nil)
                      let d = Reference.conv2d(xi, weight: q["down.weight"]!, bias: [], out: 4, kernel: 1, stride: 2, padding: 0, dilation: 1, groups: 1)
                      return zip(a.v, d.v).map { max(0, $0 + $1) }
                  }),
        LayerCase(name: "relu", inputShape: [2, 3, 4, 4], training: true, make: { _ in ReLU() }, reference: { x, _ in x.map { max(0, $0) } }),
        LayerCase(name: "relu6", inputShape: [2, 3, 4, 4], training: true, make: { _ in ReLU.six() },
                  reference: { x, _ in x.map { min(6, max(0, $0)) } }, inputScale: 9),
        LayerCase(name: "maxpool 3x3 s2 p1", inputShape: [2, 2, 7, 6], training: true, make: { _ in MaxPool2d(kernel: 3, stride: 2, padding: 1) },
                  reference: { x, _ in Reference.pool(nchw(x, [2, 2, 7, 6]), max: true, kernel: 3, stride: 2, padding: 1).v }),
        LayerCase(name: "maxpool 3x3 s2 p1, a full vector of outputs and a tail", inputShape: [1, 2, 9, 20], training: true,
                  make: { _ in MaxPool2d(kernel: 3, stride: 2, padding: 1) },
                  reference: { x, _ in Reference.pool(nchw(x, [1, 2, 9, 20]), max: true, kernel: 3, stride: 2, padding: 1).v }),
        LayerCase(name: "maxpool 3x3 s1 p1 (general loop)", inputShape: [2, 2, 5, 6], training: true, make: { _ in MaxPool2d(kernel: 3, stride: 1, padding: 1) },
                  reference: { x, _ in Reference.pool(nchw(x, [2, 2, 5, 6]), max: true, kernel: 3, stride: 1, padding: 1).v }),
        LayerCase(name: "avgpool 2x2", inputShape: [2, 2, 6, 5], training: true, make: { _ in AvgPool2d(kernel: 2) },
                  reference: { x, _ in Reference.pool(nchw(x, [2, 2, 6, 5]), max: false, kernel: 2, stride: 2, padding: 0).v }),
        LayerCase(name: "avgpool 3x3 s2 p1", inputShape: [1, 2, 6, 7], training: true, make: { _ in AvgPool2d(kernel: 3, stride: 2, padding: 1) },
                  reference: { x, _ in Reference.pool(nchw(x, [1, 2, 6, 7]), max: false, kernel: 3, stride: 2, padding: 1).v }),
        LayerCase(name: "adaptive avgpool 5x7 to 2x3", inputShape: [2, 3, 5, 7], training: true, make: { _ in AvgPool2d(adaptive: 2, 3) },
                  reference: { x, _ in Reference.adaptiveAverage(nchw(x, [2, 3, 5, 7]), h: 2, w: 3).v }),
        LayerCase(name: "adaptive avgpool to 1x1", inputShape: [2, 4, 3, 3], training: true, make: { _ in AvgPool2d(adaptive: 1, 1) },
                  reference: { x, _ in Reference.adaptiveAverage(nchw(x, [2, 4, 3, 3]), h: 1, w: 1).v }),
        LayerCase(name: "linear", inputShape: [3, 5], training: true, make: { Linear($0, "fc", in: 5, out: 4) },
                  reference: { x, q in Reference.linear(x, n: 3, weight: q["fc.weight"]!, bias: q["fc.bias"]!, in: 5, out: 4) }),
        LayerCase(name: "flatten then linear", inputShape: [2, 2, 2, 3], training: true,
                  make: { Sequential([Flatten(), Linear($0, "fc", in: 12, out: 3)]) },
                  reference: { x, q in Reference.linear(x, n: 2, weight: q["fc.weight"]!, bias: q["fc.bias"]!, in: 12, out: 3) }),
        LayerCase(name: "conv, batchnorm, relu chain", inputShape: [2, 2, 5, 5], training: true,
                  make: { Sequential([Conv2d($0, "c", in: 2, out: 3, kernel: 3, padding: 1, bias: false), BatchNorm2d($0, "bn", channels: 3), ReLU()]) },
                  reference: { x, q in
                      let c = Reference.conv2d(nchw(x, [2, 2, 5, 5]), weight: q["c.weight"]!, bias: [], out: 3, kernel: 3, stride: 1, padding: 1, dilation: 1, groups: 1)
                      return Reference.batchNorm(c, gamma: q["bn.weight"]!, beta: q["bn.bias"]!, running: nil).v.map { max(0, $0) }
                  }),
    ]

    @Test(arguments: cases)
    func gradientsMatchFiniteDifferences(_ c: LayerCase) throws {
        try GradientCheck.run(c)
    }
}

struct LossTests {
    static func reference(_ z: [Double], n: Int, k: Int, targets: [Int], w: [Double], e: Double) -> Double {
        var total = 0.0, norm = 0.0
        for i in 0 ..< n {
            let row = Array(z[i * k ..< (i + 1) * k])
            let logZ = log(row.map { exp($0) }.reduce(0, +))
            let nll = (0 ..< k).map { logZ - row[$0] }
            total += (1 - e) * w[targets[i]] * nll[targets[i]] + e / Double(k) * (0 ..< k).reduce(0) { $0 + w[$1] * nll[$1] }
            norm += w[targets[i]]
        }
        return total / norm
    }

    @Test(arguments: [(0.0, false), (0.1, false), (0.0, true), (0.2, true)])
    func crossEntropyValueAndGradient(smoothing: Double, weighted: Bool) {
        var rng = SplitMix64(seed: 3)
        let (n, k) = (4, 5)
        let z = (0 ..< n * k).map { _ in Double.random(in: -3 ... 3, using: &rng) }
        let targets = [0, 3, 4, 3]
        let w: [Double] = weighted ? [1, 2, 0.5, 1.5, 3] : [1, 1, 1, 1, 1]
        let result = CrossEntropy.compute(logits: Tensor(shape: [n, k], values: z.map(Float.init)), targets: targets,
                                          weights: weighted ? w.map(Float.init) : nil, labelSmoothing: Float(smoothing))
        #expect(abs(Double(result.loss) - Self.reference(z, n: n, k: k, targets: targets, w: w, e: smoothing)) < 1e-5)
        for i in 0 ..< n * k {
            var up = z, down = z
            up[i] += 1e-5; down[i] -= 1e-5
            let numeric = (Self.reference(up, n: n, k: k, targets: targets, w: w, e: smoothing) - Self.reference(down, n: n, k: k, targets: targets, w: w, e: smoothing)) / 2e-5
            #expect(abs(Double(result.gradient.pointer[i]) - numeric) < 1e-5)
        }
    }

    /// Hand-computed: logits (0, 0) target 0 gives log 2; logits (ln 3, 0) target 1 gives log 4.
    @Test func crossEntropyHandValues() {
        let r = CrossEntropy.compute(logits: Tensor(shape: [2, 2], values: [0, 0, Float(log(3.0)), 0]), targets: [0, 1])
        #expect(abs(r.loss - Float((log(2.0) + log(4.0)) / 2)) < 1e-6)
        #expect(abs(r.gradient.pointer[0] - (-0.25)) < 1e-6 && abs(r.gradient.pointer[3] - (-0.375)) < 1e-6)
    }

    @Test func ordinalCumulativeBCE() {
        var rng = SplitMix64(seed: 5)
        let z = (0 ..< 3 * 5).map { _ in Double.random(in: -2 ... 2, using: &rng) }
        let targets = [0, 3, 5]
        func loss(_ z: [Double]) -> Double {
            var t = 0.0
            for i in 0 ..< 3 { for j in 0 ..< 5 {
                let p = 1 / (1 + exp(-z[i * 5 + j])), y: Double = targets[i] > j ? 1 : 0
                t -= y * log(p) + (1 - y) * log(1 - p)
            } }
            return t / 15
        }
        let r = OrdinalLoss.cumulativeBCE(logits: Tensor(shape: [3, 5], values: z.map(Float.init)), targets: targets)
        #expect(abs(Double(r.loss) - loss(z)) < 1e-5)
        for i in 0 ..< 15 {
            var up = z, down = z
            up[i] += 1e-5; down[i] -= 1e-5
            #expect(abs(Double(r.gradient.pointer[i]) - (loss(up) - loss(down)) / 2e-5) < 1e-5)
        }
        #expect(OrdinalLoss.cumulativePrediction(logits: Tensor(shape: [2, 3], values: [5, 1, -2, -1, -3, -4])) == [2, 0])
        let mse = OrdinalLoss.meanSquared(outputs: Tensor(shape: [2, 1], values: [1.5, 3]), targets: [1, 4])
        #expect(abs(mse.loss - 0.625) < 1e-6 && mse.gradient.array == [0.5, -1])
    }
}

struct ModeTests {
    @Test func dropoutScalesKeptUnitsAndDropsAboutP() {
        let ctx = Context(training: true, seed: 11)
        let x = Tensor(shape: [1, 100_000], values: [Float](repeating: 1, count: 100_000))
        let layer = Dropout(p: 0.3)
        let y = layer.forward(x, ctx)
        let kept = y.array.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.7) < 1e-6 })
        #expect(abs(Double(kept.count) / 100_000 - 0.7) < 0.01)
        let dx = layer.backward(Tensor(shape: [1, 100_000], values: [Float](repeating: 2, count: 100_000)), ctx)
        #expect(zip(dx.array, y.array).allSatisfy { $0 == 2 * $1 })
        #expect(Dropout(p: 0.3).forward(x, Context(training: false)).array == x.array)   // evaluation: identity
    }

    @Test func dropout2dDropsWholeChannels() {
        let ctx = Context(training: true, seed: 2)
        let x = Tensor(shape: [4, 50, 3, 3], values: [Float](repeating: 1, count: 1800))
        let y = Dropout(p: 0.2, channels: true).forward(x, ctx)
        for plane in 0 ..< 200 {
            let values = Set(y.array[plane * 9 ..< plane * 9 + 9])
            #expect(values == [0] || values == [1.25])
        }
    }

    /// Running statistics follow PyTorch: momentum 0.1 and the unbiased batch variance; eval uses them.
    /// Ties go to the first maximum in window order, as in PyTorch (the 3x3 stride-2 kernel keeps it).
    @Test func maxPoolTiesGoToTheFirstInWindowOrder() {
        let pool = MaxPool2d(kernel: 3, stride: 2, padding: 1), ctx = Context(training: true)
        _ = pool.forward(Tensor(shape: [1, 1, 4, 4], values: [Float](repeating: 1, count: 16)), ctx)
        let dx = pool.backward(Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4]), ctx)
        #expect(dx.array == [1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func batchNormRunningStatistics() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store, "bn", channels: 1)
        store.finalize(seed: 0)
        let values: [Float] = [1, 2, 3, 4, 5, 6]   // mean 3.5, biased var 17.5/6, unbiased 3.5
        _ = bn.forward(Tensor(shape: [2, 1, 1, 3], values: values), Context(training: true))
        #expect(abs(store.buffers[0] - 0.35) < 1e-6)
        #expect(abs(store.buffers[1] - (0.9 + 0.1 * 3.5)) < 1e-6)
        #expect(store.counters[store.entry("bn.num_batches_tracked")!.offset] == 1)
        let y = bn.forward(Tensor(shape: [1, 1, 1, 1], values: [0.35]), Context(training: false))
        #expect(abs(y.pointer[0]) < 1e-6)
        #expect(store.counters[0] == 1)   // evaluation does not count batches
        // Batch statistics outside training (PatchGD's fill with --fill-statistics batch): normalised like training,
        // running statistics and the counter untouched.
        let ctx = Context(training: false)
        ctx.batchStatistics = true
        let before = Array(store.buffers)
        let z = bn.forward(Tensor(shape: [2, 1, 1, 3], values: values), ctx)
        let t = bn.forward(Tensor(shape: [2, 1, 1, 3], values: values), Context(training: true, recordForBackward: false))
        #expect((0 ..< 6).allSatisfy { abs(z.pointer[$0] - t.pointer[$0]) < 1e-6 } && abs(z.pointer[0] + 1.4638501) < 1e-4)
        _ = store.buffers.update(from: before)
        _ = bn.forward(Tensor(shape: [2, 1, 1, 3], values: values), ctx)
        #expect(Array(store.buffers) == before && store.counters[0] == 2)
    }

    /// Recalibration: the running statistics become the plain average of the batches' means and unbiased variances,
    /// whatever they were; frozen BatchNorm normalises with and keeps the running ones, in training too.
    @Test func batchNormRecalibrationAndFreezing() {
        let store = ParameterStore()
        let bn = BatchNorm2d(store, "bn", channels: 1)
        store.finalize(seed: 0)
        store.buffers[0] = 42
        store.buffers[1] = 9
        store.counters[0] = 7
        let ctx = Context(training: false, recordForBackward: false)
        ctx.recalibrateBatchNorm = true
        store.recalibratingBatchNorm {
            _ = bn.forward(Tensor(shape: [1, 1, 1, 4], values: [1, 2, 3, 4]), ctx)      // mean 2.5, unbiased var 5/3
            _ = bn.forward(Tensor(shape: [1, 1, 1, 4], values: [10, 10, 12, 12]), ctx)  // mean 11, unbiased var 4/3
        }
        #expect(abs(store.buffers[0] - 6.75) < 1e-5, "\(store.buffers[0])")
        #expect(abs(store.buffers[1] - 1.5) < 1e-5, "\(store.buffers[1])")
        #expect(store.counters[0] == 7)
        let frozen = Context(training: true)
        frozen.frozenBatchNorm = true
        let y = bn.forward(Tensor(shape: [1, 1, 1, 2], values: [6.75, 6.75 + Float(1.5).squareRoot()]), frozen)
        #expect(abs(y.pointer[0]) < 1e-4 && abs(y.pointer[1] - 1) < 1e-3, "\(y.array)")
        #expect(abs(store.buffers[0] - 6.75) < 1e-5 && store.counters[0] == 7)
    }
}

/// Winograd's 3x3 path against the unrolled (im2col + GEMM) path on shapes like a ResNet's, in float.
struct WinogradTests {
    /// Block sizes of 128 tiles spread each block over the cores on these shapes; 16 tiles make many blocks, one per worker.
    @Test(arguments: [(2, 16, 24, 12, 34, 128), (2, 16, 24, 12, 34, 16), (3, 8, 8, 9, 16, 128), (3, 8, 8, 9, 16, 16),
                      (16, 32, 32, 4, 4, 128), (1, 64, 16, 33, 18, 128), (1, 64, 16, 33, 18, 16)])
    func matchesUnrolledPath(n: Int, c: Int, o: Int, h: Int, w: Int, blockTiles: Int) {
        func run(winograd: Bool) -> (y: [Float], dx: [Float], dw: [Float]) {
            let store = ParameterStore()
            let conv = Conv2d(store, "conv", in: c, out: o, kernel: 3, padding: 1, bias: false)
            conv.winograd = winograd ? .always : .never
            conv.winogradBlockTiles = blockTiles
            conv.winogradLimit = 16 * max(c, o) * 3 * ((w + 1) / 2)   // spread-out blocks of three tile rows
            store.finalize(seed: 3)
            var rng = SplitMix64(seed: 11)
            let x = Tensor(shape: [n, c, h, w], values: (0 ..< n * c * h * w).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            let dy = Tensor(shape: [n, o, h, w], values: (0 ..< n * o * h * w).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            let ctx = Context(training: true)
            let y = conv.forward(x, ctx)
            store.zeroGradients()
            let dx = conv.backward(dy, ctx)
            return (y.array, dx.array, Array(store.gradients))
        }
        let a = run(winograd: true), b = run(winograd: false)
        for (name, p, q) in [("y", a.y, b.y), ("dx", a.dx, b.dx), ("dW", a.dw, b.dw)] {
            let scale = q.map(abs).max() ?? 1
            let error = zip(p, q).map { abs($0 - $1) }.max() ?? 0
            #expect(error <= 2e-6 * scale * Float(c * 9).squareRoot(), "\(name) differs by \(error) (scale \(scale))")
        }
    }
}

/// `Depthwise3x3` against the general depthwise loops on MobileNet-like shapes (planes of 1 to 64 and odd sides).
struct DepthwiseTests {
    @Test(arguments: [(2, 8, 64, 64, 1, 1), (2, 8, 64, 64, 2, 1), (3, 16, 13, 17, 1, 1), (3, 16, 13, 17, 2, 1), (2, 6, 9, 8, 2, 2),
                      (4, 32, 4, 4, 1, 1), (4, 32, 1, 1, 1, 1), (4, 32, 2, 3, 2, 1), (1, 4, 40, 33, 2, 1)])
    func matchesGeneralLoops(n: Int, c: Int, h: Int, w: Int, stride: Int, multiplier: Int) throws {
        func run(fast: Bool) -> (y: [Float], dx: [Float], dw: [Float]) {
            let store = ParameterStore()
            let conv = Conv2d(store, "dw", in: c, out: c * multiplier, kernel: 3, stride: stride, padding: 1, groups: c, bias: false)
            conv.fastDepthwise = fast
            store.finalize(seed: 5)
            var rng = SplitMix64(seed: 12)
            let x = Tensor(shape: [n, c, h, w], values: (0 ..< n * c * h * w).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            let ctx = Context(training: true)
            let y = conv.forward(x, ctx)
            #expect(conv.usesDepthwise3x3 == fast)
            let dy = Tensor(shape: y.shape, values: (0 ..< y.count).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            store.zeroGradients()
            let dx = conv.backward(dy, ctx)
            return (y.array, dx.array, Array(store.gradients))
        }
        let a = run(fast: true), b = run(fast: false)
        #expect(a.y.count == b.y.count && a.dx.count == b.dx.count)
        for (name, p, q, terms) in [("y", a.y, b.y, 9), ("dx", a.dx, b.dx, 9), ("dW", a.dw, b.dw, n * h * w)] {
            let scale = max(1, q.map(abs).max() ?? 1)
            let error = zip(p, q).map { abs($0 - $1) }.max() ?? 0
            #expect(error <= 4e-7 * scale * Float(terms).squareRoot() * 4, "\(name) differs by \(error) (scale \(scale))")
        }
    }
}

/// A first layer can skip its input gradient: the weight gradient stays the same on every convolution path.
struct InputGradientTests {
    @Test(arguments: [(16, 3, 1, Conv2d.WinogradUse.always), (16, 3, 1, .never), (6, 3, 1, .never), (20, 7, 2, .never)])
    func weightGradientUnchangedWithoutInputGradient(size: Int, kernel: Int, stride: Int, winograd: Conv2d.WinogradUse) {
        func run(inputGradient: Bool) -> (dx: [Float], dw: [Float]) {
            let store = ParameterStore()
            let conv = Conv2d(store, "conv", in: 3, out: 5, kernel: kernel, stride: stride, padding: kernel / 2)
            conv.winograd = winograd
            conv.computesInputGradient = inputGradient
            store.finalize(seed: 4)
            var rng = SplitMix64(seed: 8)
            let x = Tensor(shape: [2, 3, size, size], values: (0 ..< 2 * 3 * size * size).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            let ctx = Context(training: true)
            let y = conv.forward(x, ctx)
            let dy = Tensor(shape: y.shape, values: (0 ..< y.count).map { _ in Float.random(in: -1 ... 1, using: &rng) })
            return (conv.backward(dy, ctx).array, Array(store.gradients))
        }
        let with = run(inputGradient: true), without = run(inputGradient: false)
        #expect(with.dw == without.dw)
        #expect(without.dx.allSatisfy { $0 == 0 } && with.dx.contains { $0 != 0 })
    }

    @Test func backbonesSkipItAndTheHeadKeepsIt() throws {
        #expect(try #require(Model.backbone("resnet18")).computesInputGradient == false)
        #expect(try #require(Model.backbone("mobilenet_v2")).computesInputGradient == false)
        #expect(PatchGDHead.make(latent: 8, features: 8, classes: 3, dropout: 0, seed: 1).computesInputGradient)
    }

    /// The adaptive head is the reference head on a 16 x 16 grid (every block strides), and keeps 2 x 2 maps on a 4 x 4
    /// grid, where the reference is down to 1 x 1 after two blocks; both share one set of weights by name.
    @Test func adaptiveHeadIsTheReferenceOnLargeGridsAndKeepsSmallOnes() throws {
        let fixed = PatchGDHead.make(latent: 6, features: 5, classes: 3, dropout: 0, seed: 4)
        let adaptive = PatchGDHead.make(latent: 6, features: 5, classes: 3, dropout: 0, adaptiveStrides: true, seed: 4)
        #expect(fixed.store.entries.map(\.name) == adaptive.store.entries.map(\.name))
        #expect(Array(fixed.store.values) == Array(adaptive.store.values))
        var rng = SplitMix64(seed: 9)
        func grid(_ side: Int) -> Tensor {
            Tensor(shape: [3, 6, side, side], values: (0 ..< 3 * 6 * side * side).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        }
        let z16 = grid(16)
        let yFixed = fixed.forward(z16, Context(training: true)), yAdaptive = adaptive.forward(z16, Context(training: true))
        #expect(yFixed.array == yAdaptive.array)
        let dy = Tensor(shape: yFixed.shape, values: (0 ..< yFixed.count).map { _ in Float.random(in: -1 ... 1, using: &rng) })
        let dzFixed = fixed.backward(dy, Context(training: true)), dzAdaptive = adaptive.backward(dy, Context(training: true))
        #expect(dzFixed.array == dzAdaptive.array)
        #expect(Array(fixed.store.gradients) == Array(adaptive.store.gradients))

        let convs = (adaptive.network as! Sequential).layers.compactMap { $0 as? AdaptiveStrideConv2d }
        #expect(convs.count == 3)
        var side = 4
        for conv in convs { side = conv.outputSize(h: side, w: side).h }
        #expect(side == 2)
        let z4 = grid(4)
        #expect(fixed.forward(z4, Context(training: true)).array != adaptive.forward(z4, Context(training: true)).array)
    }
}

/// Inference fuses a BatchNorm2d into the Conv2d before it (`Sequential`, `BatchNorm2d.inferenceEpilogue`): the same
/// floats bit for bit as the two layers one after the other, on every convolution path, and nothing is fused where
/// BatchNorm needs its batch (training, recalibration, batch statistics) or records for backward.
struct BatchNormFusionTests {
    struct Case: CustomStringConvertible, @unchecked Sendable {
        let name: String
        let input: [Int]
        let make: (ParameterStore) -> Conv2d
        var precision: Precision = .fp32
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "depthwise 3x3 (fused per plane)", input: [2, 8, 12, 12], make: { Conv2d($0, "c", in: 8, out: 8, kernel: 3, padding: 1, groups: 8, bias: false) }),
        Case(name: "depthwise 3x3 stride 2", input: [2, 8, 13, 11], make: { Conv2d($0, "c", in: 8, out: 8, kernel: 3, stride: 2, padding: 1, groups: 8, bias: false) }),
        Case(name: "depthwise 5x5 (general loops)", input: [1, 4, 9, 9], make: { Conv2d($0, "c", in: 4, out: 4, kernel: 5, padding: 2, groups: 4, bias: false) }),
        Case(name: "pointwise per image, batch over workers", input: [6, 12, 20, 20], make: { Conv2d($0, "c", in: 12, out: 20, kernel: 1, bias: false) }),
        Case(name: "pointwise per image, one image", input: [1, 12, 20, 20], make: { Conv2d($0, "c", in: 12, out: 20, kernel: 1, bias: false) }),
        Case(name: "3x3 per image in bands", input: [1, 6, 40, 40], make: {
            let c = Conv2d($0, "c", in: 6, out: 10, kernel: 3, padding: 1, bias: false); c.winograd = .never; c.unrollLimit = 6 * 9 * 40 * 7; return c }),
        Case(name: "3x3 Winograd", input: [2, 8, 16, 16], make: { let c = Conv2d($0, "c", in: 8, out: 8, kernel: 3, padding: 1, bias: false); c.winograd = .always; return c }),
        Case(name: "3x3 s2 batch path", input: [3, 6, 9, 9], make: { Conv2d($0, "c", in: 6, out: 10, kernel: 3, stride: 2, padding: 1, bias: false) }),
        Case(name: "with bias (after the bias)", input: [2, 12, 20, 20], make: { Conv2d($0, "c", in: 12, out: 20, kernel: 1) }),
        Case(name: "pointwise per image, bf16", input: [2, 16, 16, 16], make: { Conv2d($0, "c", in: 16, out: 24, kernel: 1, bias: false) }, precision: .bf16),
        Case(name: "3x3 bf16 (oneDNN where installed)", input: [2, 16, 16, 16], make: { Conv2d($0, "c", in: 16, out: 24, kernel: 3, padding: 1, bias: false) },
             precision: .bf16),
    ]

    /// A conv and a BatchNorm with random weights and running statistics, in a Sequential.
    static func make(_ c: Case, activation: BatchNorm2d.Activation) -> (Sequential, Conv2d, BatchNorm2d, ParameterStore) {
        let store = ParameterStore()
        let conv = c.make(store)
        let norm = BatchNorm2d(store, "bn", channels: conv.outChannels, activation: activation)
        store.finalize(seed: 7)
        var rng = SplitMix64(seed: 8)
        // Non-trivial statistics and affine parameters (beta around 0 so the clamps bite).
        for name in ["bn.running_mean", "bn.running_var", "bn.weight", "bn.bias"] {
            let entry = store.entry(name)!
            let base = entry.kind == .buffer ? store.buffer(entry.offset) : store.value(entry.offset)
            for i in 0 ..< entry.count {
                let v = Float.random(in: -1 ... 1, using: &rng)
                base[i] = name.hasSuffix("var") ? 0.2 + v * v : (name.hasSuffix("weight") ? 1 + v : v)
            }
        }
        return (Sequential([conv, norm]), conv, norm, store)
    }

    @Test(arguments: cases)
    func fusedEqualsLayerByLayer(_ c: Case) throws {
        if c.precision == .bf16 && !BFloat16.isSupported { try Test.cancel(Comment(rawValue: BFloat16Tests.skipNote)) }
        for activation in [BatchNorm2d.Activation.none, .relu, .relu6] {
            let (net, conv, norm, store) = Self.make(c, activation: activation)   // layers hold their store unowned
            defer { withExtendedLifetime(store) {} }
            var rng = SplitMix64(seed: 9)
            let x = Tensor(shape: c.input, values: (0 ..< c.input.reduce(1, *)).map { _ in Float.random(in: -3 ... 3, using: &rng) })
            let ctx = Context(training: false, precision: c.precision)
            #expect(norm.inferenceEpilogue(ctx) != nil)
            let separate = norm.forward(conv.forward(x, ctx), ctx).array
            let fused = net.forward(x, ctx).array
            #expect(Sequential.fusesBatchNorm)
            #expect(fused == separate, "\(c.name), \(activation): fused differs from conv then BatchNorm")
            if activation != .none { #expect(separate.contains(0), "\(c.name): the activation never clamped") }
        }
    }

    @Test func notFusedWhereBatchNormNeedsItsBatchOrRecords() {
        let (net, _, norm, store) = Self.make(Self.cases[3], activation: .relu)
        let x = Tensor(shape: [6, 12, 20, 20], values: [Float](repeating: 0.5, count: 6 * 12 * 400))
        let training = Context(training: true), recording = Context(training: false, recordForBackward: true)
        let statistics = Context(training: false); statistics.batchStatistics = true
        let recalibrating = Context(training: false); recalibrating.recalibrateBatchNorm = true
        let frozen = Context(training: true, recordForBackward: false); frozen.frozenBatchNorm = true
        for ctx in [training, recording, statistics, recalibrating] { #expect(norm.inferenceEpilogue(ctx) == nil) }
        #expect(norm.inferenceEpilogue(frozen) != nil, "frozen BatchNorm without recording is an affine map")
        let counter = store.entry("bn.num_batches_tracked")!.offset, before = store.counters[counter]
        _ = net.forward(x, training)
        #expect(store.counters[counter] == before + 1, "training went through BatchNorm's own forward")
    }
}
