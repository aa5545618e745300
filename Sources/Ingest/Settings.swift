import Basics
import Foundation
import Tissue

/// An error of the ingest stage: a bad setting, preset or slide, with what to do.
public struct IngestError: Error, Sendable, CustomStringConvertible, KindedError {
    public let message: String
    public let kind: ErrorKind
    public init(_ message: String, kind: ErrorKind = .other) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}

/// Every parameter of a patch grid and its tissue filter; presets are these as JSON files.
///
/// Decoding starts from the defaults, so a preset or config file names only what it changes.
public struct IngestSettings: Sendable, Equatable, Codable {
    /// Patch side in pixels at the target resolution.
    public var patchSize = 256
    /// Step between patches at the target resolution; nil = patch size (no overlap).
    public var stride: Int?
    /// Read at this pyramid level (exclusive with `mpp`).
    public var level: Int?
    /// Target microns per pixel: read from the nearest finer level and resample (exclusive with `level`).
    public var mpp: Double?
    /// Fraction of a patch that must be tissue for it to be kept.
    public var minTissue = 0.5
    public var tissue = TissueParameters()
    /// Optional per-patch filters: a patch is dropped when more than this fraction is white, gray or near-black.
    public var maxWhitespace: Double?
    public var maxGrayspace: Double?
    public var maxBlack: Double?
    /// Longest side of the thumbnail tissue is detected on (raised when patches would be under 4 mask pixels).
    public var maskMaxSize = 2048
    /// Number of classes manifest labels must fall in (PANDA: 6).
    public var classes: Int?
    /// Why a preset's values are what they are (documentation; not a grid parameter).
    public var why: String?

    public init() {}

    enum CodingKeys: String, CodingKey {
        case patchSize = "patch_size", stride, level, mpp, minTissue = "min_tissue", tissue
        case maxWhitespace = "max_whitespace", maxGrayspace = "max_grayspace", maxBlack = "max_black"
        case maskMaxSize = "mask_max_size", classes, why
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var s = IngestSettings()
        s.patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? s.patchSize
        s.stride = try c.decodeIfPresent(Int.self, forKey: .stride)
        s.level = try c.decodeIfPresent(Int.self, forKey: .level)
        s.mpp = try c.decodeIfPresent(Double.self, forKey: .mpp)
        s.minTissue = try c.decodeIfPresent(Double.self, forKey: .minTissue) ?? s.minTissue
        s.tissue = try c.decodeIfPresent(TissueParameters.self, forKey: .tissue) ?? s.tissue
        s.maxWhitespace = try c.decodeIfPresent(Double.self, forKey: .maxWhitespace)
        s.maxGrayspace = try c.decodeIfPresent(Double.self, forKey: .maxGrayspace)
        s.maxBlack = try c.decodeIfPresent(Double.self, forKey: .maxBlack)
        s.maskMaxSize = try c.decodeIfPresent(Int.self, forKey: .maskMaxSize) ?? s.maskMaxSize
        s.classes = try c.decodeIfPresent(Int.self, forKey: .classes)
        s.why = try c.decodeIfPresent(String.self, forKey: .why)
        self = s
    }

    /// The preset names shipped with Gigapatch.
    public static var presetNames: [String] {
        let folder = presetFolder.path
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }

    /// The folder of shipped presets (a resource of this module).
    static var presetFolder: URL {
        (Bundle.module.resourceURL ?? Bundle.module.bundleURL).appendingPathComponent("Presets")
    }

    /// A shipped preset by name, or a JSON file by path.
    public static func preset(_ nameOrPath: String) throws -> IngestSettings {
        let url: URL
        if nameOrPath.hasSuffix(".json") || nameOrPath.contains("/") {
            url = URL(fileURLWithPath: nameOrPath)
        } else if FileManager.default.fileExists(atPath: presetFolder.appendingPathComponent(nameOrPath + ".json").path) {
            url = presetFolder.appendingPathComponent(nameOrPath + ".json")
        } else {
            throw IngestError("unknown preset '\(nameOrPath)'; shipped presets: \(presetNames.joined(separator: ", ")), or give a .json file")
        }
        do {
            return try JSONDecoder().decode(IngestSettings.self, from: Data(contentsOf: url))
        } catch {
            throw IngestError("\(url.path): cannot read preset: \(error)")
        }
    }

    /// Checks the settings; returns the problem or nil.
    public func problem() -> String? {
        if patchSize < 16 || patchSize > 8192 { return "patch size must be 16...8192, got \(patchSize)" }
        if let stride, stride < 1 { return "stride must be positive, got \(stride)" }
        if level != nil && mpp != nil { return "give --level or --mpp, not both" }
        if let level, level < 0 { return "level must be 0 or more" }
        if let mpp, !(mpp > 0) { return "mpp must be positive" }
        if !(0 ... 1).contains(minTissue) { return "min tissue must be a fraction 0...1, got \(minTissue)" }
        if !["otsu", "none"].contains(tissue.method) { return "tissue method must be otsu or none, got \(tissue.method)" }
        for (name, value) in [("max whitespace", maxWhitespace), ("max grayspace", maxGrayspace), ("max black", maxBlack)] {
            if let value, !(0 ... 1).contains(value) { return "\(name) must be a fraction 0...1" }
        }
        return nil
    }

    /// The grid parameters as canonical JSON: equal text means the same tiling.
    public var tilingKey: String {
        var copy = self
        copy.why = nil
        copy.classes = nil
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(copy)) ?? Data(), as: UTF8.self)
    }
}
