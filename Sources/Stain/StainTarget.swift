import Foundation

/// The colours patches are normalised to: a method and what was fitted for it (`gigapatch-stain fit` writes it as
/// JSON; checkpoints carry it, so prediction applies the same transform).
public struct StainTarget: Codable, Equatable, Sendable {
    public enum Method: String, Codable, CaseIterable, Sendable { case macenko, reinhard }

    public var format = "gigapatch-stain-target"
    public var version = 1
    public var method: Method
    public var macenko: Macenko.Stains?
    public var macenkoParameters: Macenko.Parameters?
    public var reinhard: Reinhard.Statistics?
    public var reinhardParameters: Reinhard.Parameters?
    /// What it was fitted from (a file, a region, a dataset sample), for people reading the file.
    public var fittedFrom: String?
    /// Tissue pixels it was fitted from.
    public var tissuePixels: Int?

    public init(macenko stains: Macenko.Stains, parameters: Macenko.Parameters = Macenko.Parameters(), fittedFrom: String? = nil, tissuePixels: Int? = nil) {
        method = .macenko
        macenko = stains
        macenkoParameters = parameters
        self.fittedFrom = fittedFrom
        self.tissuePixels = tissuePixels
    }

    public init(reinhard statistics: Reinhard.Statistics, parameters: Reinhard.Parameters = Reinhard.Parameters(), fittedFrom: String? = nil,
                tissuePixels: Int? = nil) {
        method = .reinhard
        reinhard = statistics
        reinhardParameters = parameters
        self.fittedFrom = fittedFrom
        self.tissuePixels = tissuePixels
    }

    enum CodingKeys: String, CodingKey {
        case format, version, method, macenko, reinhard
        case macenkoParameters = "macenko_parameters", reinhardParameters = "reinhard_parameters"
        case fittedFrom = "fitted_from", tissuePixels = "tissue_pixels"
    }

    /// Decodes and checks a target; the message says what is wrong (callers add the file name).
    public static func decode(_ data: Data) throws -> StainTarget {
        let target: StainTarget
        do { target = try JSONDecoder().decode(StainTarget.self, from: data) } catch {
            throw StainError("not a stain target (\(Self.describe(error)))")
        }
        if let problem = target.problem() { throw StainError(problem) }
        return target
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self) + Data("\n".utf8)
    }

    /// What makes the target unusable, or nil.
    public func problem() -> String? {
        guard format == "gigapatch-stain-target" else { return "format is '\(format)', not gigapatch-stain-target" }
        guard version == 1 else { return "version \(version) is newer than this build reads (1)" }
        switch method {
        case .macenko:
            guard let s = macenko else { return "method macenko without its 'macenko' stains" }
            guard s.hematoxylin.count == 3, s.eosin.count == 3, s.maxConcentrations.count == 2,
                  (s.hematoxylin + s.eosin + s.maxConcentrations).allSatisfy(\.isFinite),
                  s.maxConcentrations.allSatisfy({ $0 > 0 }) else {
                return "macenko stains need 3 finite hematoxylin and eosin values and 2 positive max_concentrations"
            }
        case .reinhard:
            guard let s = reinhard else { return "method reinhard without its 'reinhard' statistics" }
            guard s.mean.count == 3, s.std.count == 3, (s.mean + s.std).allSatisfy(\.isFinite), s.std.allSatisfy({ $0 > 0 }) else {
                return "reinhard statistics need 3 finite means and 3 positive standard deviations"
            }
        }
        return nil
    }

    static func describe(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "bad value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        default: return "\(error)"
        }
    }

    /// A one-line description: method and numbers.
    public var summary: String {
        func f(_ v: [Double]) -> String { v.map { String(format: "%.4f", $0) }.joined(separator: ", ") }
        switch method {
        case .macenko:
            let s = macenko!
            return "macenko: H (\(f(s.hematoxylin))), E (\(f(s.eosin))), max concentrations \(f(s.maxConcentrations))"
        case .reinhard:
            let s = reinhard!
            return "reinhard: L*a*b* mean (\(f(s.mean))), std (\(f(s.std)))"
        }
    }
}

/// A stain target that cannot be used, with the reason.
public struct StainError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Applies a target to patches (interleaved RGB bytes) and counts those it had to leave as they were (blank,
/// background-only or single-stain patches). Thread-safe.
public final class StainNormalizer: @unchecked Sendable {
    public let target: StainTarget
    private let lock = NSLock()
    private var normalized = 0, unchanged = 0

    public init(_ target: StainTarget) { self.target = target }

    /// Normalises in place; false when the patch was left as it was (counted).
    @discardableResult
    public func apply(_ rgb: inout [UInt8]) -> Bool {
        let ok: Bool = rgb.withUnsafeMutableBufferPointer { buffer in
            switch target.method {
            case .macenko: return Macenko.normalize(buffer, to: target.macenko!, parameters: target.macenkoParameters ?? Macenko.Parameters()) == nil
            case .reinhard: return Reinhard.normalize(buffer, to: target.reinhard!, parameters: target.reinhardParameters ?? Reinhard.Parameters()) == nil
            }
        }
        lock.withLock { if ok { normalized += 1 } else { unchanged += 1 } }
        return ok
    }

    /// Patches normalised, and patches left as they were.
    public var counts: (normalized: Int, unchanged: Int) { lock.withLock { (normalized, unchanged) } }
}
