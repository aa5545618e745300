import Foundation

/// One pyramid level: its size in pixels and its downsample relative to level 0.
public struct SlideLevel: Sendable, Equatable, Codable {
    public let width: Int
    public let height: Int
    public let downsample: Double

    public init(width: Int, height: Int, downsample: Double) {
        self.width = width
        self.height = height
        self.downsample = downsample
    }
}

/// Where a microns-per-pixel value came from.
public enum MPPSource: String, Sendable, Codable {
    /// The vendor metadata OpenSlide reports as `openslide.mpp-x/y`.
    case openslide
    /// Computed from `tiff.XResolution`/`tiff.YResolution` and `tiff.ResolutionUnit` (generic TIFFs such as PANDA's).
    case tiffResolution = "tiff-resolution"
    /// Neither exists: magnification-based work must be refused or given a level instead.
    case unknown
}

/// Microns per level-0 pixel with its source; `x`/`y` are nil exactly when the source is `.unknown`.
public struct MicronsPerPixel: Sendable, Equatable, Codable {
    public let x: Double?
    public let y: Double?
    public let source: MPPSource

    public static let unknown = MicronsPerPixel(x: nil, y: nil, source: .unknown)

    public init(x: Double?, y: Double?, source: MPPSource) {
        self.x = x
        self.y = y
        self.source = source
    }

    /// Reads mpp from OpenSlide properties: `openslide.mpp-x/y` first, then the TIFF resolution tags.
    ///
    /// `tiff.ResolutionUnit` must be `centimeter` or `inch` (the TIFF default, used when the tag is absent);
    /// `none` or an unparsable or non-positive resolution leaves mpp unknown rather than guessed.
    public static func from(properties: [String: String]) -> MicronsPerPixel {
        if let x = positive(properties["openslide.mpp-x"]), let y = positive(properties["openslide.mpp-y"]) {
            return MicronsPerPixel(x: x, y: y, source: .openslide)
        }
        guard let xres = positive(properties["tiff.XResolution"]) else { return .unknown }
        let yres = positive(properties["tiff.YResolution"]) ?? xres
        let micronsPerUnit: Double
        switch properties["tiff.ResolutionUnit"]?.lowercased() {
        case "centimeter", "centimetre", "cm": micronsPerUnit = 10_000
        case "inch", nil: micronsPerUnit = 25_400
        default: return .unknown
        }
        return MicronsPerPixel(x: micronsPerUnit / xres, y: micronsPerUnit / yres, source: .tiffResolution)
    }

    private static func positive(_ text: String?) -> Double? {
        guard let text, let value = Double(text.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0 else { return nil }
        return value
    }
}

/// The non-empty part of level 0 some vendors record (`openslide.bounds-*`), in level-0 pixels.
public struct SlideBounds: Sendable, Equatable, Codable {
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int

    /// Bounds from OpenSlide properties, nil when the slide has none.
    public static func from(properties: [String: String]) -> SlideBounds? {
        guard let x = properties["openslide.bounds-x"].flatMap({ Int($0) }),
              let y = properties["openslide.bounds-y"].flatMap({ Int($0) }),
              let w = properties["openslide.bounds-width"].flatMap({ Int($0) }),
              let h = properties["openslide.bounds-height"].flatMap({ Int($0) }) else { return nil }
        return SlideBounds(x: x, y: y, width: w, height: h)
    }
}

/// An associated image (label, macro, thumbnail) stored beside the pyramid.
public struct AssociatedImage: Sendable, Equatable, Codable {
    public let name: String
    public let width: Int
    public let height: Int
}
