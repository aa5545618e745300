import Foundation
import NN
import Seeded
import Testing

/// One layer under test: how to build it, its input shape, and its double-precision reference forward.
struct LayerCase: CustomStringConvertible, @unchecked Sendable {
    let name: String
    let inputShape: [Int]
    let training: Bool
    /// Builds the layer on a store (declare only; the helper finalizes).
    let make: (ParameterStore) -> Layer
    /// Reference forward: input and the store's parameters in state_dict order, as doubles; returns the output.
    let reference: ([Double], [String: [Double]]) -> [Double]
    var tolerance: Double = 2e-3
    /// Inputs are uniform in [-scale, scale].
    var inputScale: Float = 1
    var description: String { name }
}

enum GradientCheck {
    static func doubles(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> [Double] { (0 ..< n).map { Double(p[$0]) } }

    /// Checks forward against the reference, then input and parameter gradients against central differences of the reference.
    static func run(_ c: LayerCase, seed: UInt64 = 1) throws {
        let store = ParameterStore()
        let layer = c.make(store)
        store.finalize(seed: seed)
        var rng = SplitMix64(seed: seed + 100)
        // Parameters away from the defaults (BatchNorm's ones and zeros would hide mistakes).
        for i in 0 ..< store.parameterCount { store.values[i] = Float.random(in: -1 ... 1, using: &rng) }
        let x = Tensor(shape: c.inputShape, values: (0 ..< c.inputShape.reduce(1, *)).map { _ in c.inputScale * Float.random(in: -1 ... 1, using: &rng) })
        let params: () -> [String: [Double]] = {
            var d: [String: [Double]] = [:]
            for e in store.entries where e.kind != .counter {
                d[e.name] = doubles((e.kind == .parameter ? store.values : store.buffers).baseAddress! + e.offset, e.count)
            }
            return d
        }
        let ctx = Context(training: c.training, recordForBackward: true, seed: 7)
        let reference0 = c.reference(doubles(x.pointer, x.count), params())
        let y = layer.forward(x, ctx)
        #expect(y.count == reference0.count, "\(c.name): output size \(y.count) vs reference \(reference0.count)")
        let forwardError = zip(y.array.map(Double.init), reference0).map { abs($0 - $1) }.max() ?? 0
        #expect(forwardError < 1e-4 * max(1, reference0.map(abs).max() ?? 1), "\(c.name): forward differs from reference by \(forwardError)")

        // Loss = sum(y * r) for a fixed random r: dL/dy = r.
        let r = (0 ..< y.count).map { _ in Double.random(in: -1 ... 1, using: &rng) }
        store.zeroGradients()
        let dx = layer.backward(Tensor(shape: y.shape, values: r.map(Float.init)), ctx)
        let loss: ([Double], [String: [Double]]) -> Double = { xin, p in zip(c.reference(xin, p), r).reduce(0) { $0 + $1.0 * $1.1 } }
        let h = 1e-4
        var xin = doubles(x.pointer, x.count)
        for i in sample(xin.count, &rng) {
            let saved = xin[i]
            xin[i] = saved + h; let up = loss(xin, params())
            xin[i] = saved - h; let down = loss(xin, params())
            xin[i] = saved
            check(analytic: Double(dx.pointer[i]), numeric: (up - down) / (2 * h), tolerance: c.tolerance, what: "\(c.name) d input[\(i)]")
        }
        for e in store.entries where e.kind == .parameter {
            for i in sample(e.count, &rng) {
                var p = params()
                let saved = p[e.name]![i]
                p[e.name]![i] = saved + h; let up = loss(xin, p)
                p[e.name]![i] = saved - h; let down = loss(xin, p)
                check(analytic: Double(store.gradients[e.offset + i]), numeric: (up - down) / (2 * h), tolerance: c.tolerance,
                      what: "\(c.name) d \(e.name)[\(i)]")
            }
        }
    }

    /// Up to 40 indices (all when fewer).
    static func sample(_ n: Int, _ rng: inout SplitMix64) -> [Int] {
        n <= 40 ? Array(0 ..< n) : (0 ..< 40).map { _ in Int.random(in: 0 ..< n, using: &rng) }
    }

    static func check(analytic: Double, numeric: Double, tolerance: Double, what: String) {
        let error = abs(analytic - numeric) / max(1, abs(numeric))
        #expect(error < tolerance, "\(what): analytic \(analytic) vs finite difference \(numeric)")
    }
}
