import Foundation

/// Deterministic, closed-form weights for cross-checks with PyTorch: both sides fill every tensor from its name and
/// index, so fixtures need no shipped checkpoint and do not depend on either side's random initialisation.
///
/// value(name, i) = 0.5 * sin(0.7 * i + key(name)) / sqrt(fan_in) for weights (fan_in = count / shape[0]),
/// 0.1 * sin(0.3 * i + key) for biases and running means, 1 + 0.5 * |cos(0.3 * i + key)| for running variances
/// and BatchNorm weights, where key(name) = 0.01 * (sum of the name's UTF-8 bytes).
public enum FormulaWeights {
    public static func key(_ name: String) -> Double { 0.01 * Double(name.utf8.reduce(0) { $0 + Int($1) }) }

    public static func value(name: String, shape: [Int], index i: Int) -> Float {
        let k = key(name), x = Double(i)
        let isBatchNormScale = name.hasSuffix(".weight") && shape.count == 1
        if name.hasSuffix("running_var") || isBatchNormScale { return Float(1 + 0.5 * abs(cos(0.3 * x + k))) }
        if shape.count <= 1 { return Float(0.1 * sin(0.3 * x + k)) }
        let fanIn = Double(shape.dropFirst().reduce(1, *))
        return Float(0.5 * sin(0.7 * x + k) / fanIn.squareRoot())
    }

    /// Overwrites every parameter and buffer of `model` with the formula (counters are set to 0).
    public static func fill(_ model: Model) {
        let s = model.store
        for e in s.entries {
            switch e.kind {
            case .parameter: for i in 0 ..< e.count { s.values[e.offset + i] = value(name: e.name, shape: e.shape, index: i) }
            case .buffer: for i in 0 ..< e.count { s.buffers[e.offset + i] = value(name: e.name, shape: e.shape, index: i) }
            case .counter: s.counters[e.offset] = 0
            }
        }
    }

    /// The cross-check input: x[i] = sin(0.013 * i) over an NCHW tensor of `shape`.
    public static func input(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, values: (0 ..< shape.reduce(1, *)).map { Float(sin(0.013 * Double($0))) })
    }
}
