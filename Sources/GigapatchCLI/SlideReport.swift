import Foundation
import SlideIO

/// What `gigapatch-inspect --json` prints for one slide (unknown values are JSON null, never omitted).
public struct SlideReport: Encodable, Sendable {
    public struct MPP: Encodable, Sendable {
        public let x: Double?
        public let y: Double?
        public let source: String

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(x, forKey: .x)
            try c.encode(y, forKey: .y)
            try c.encode(source, forKey: .source)
        }

        enum CodingKeys: String, CodingKey { case x, y, source }
    }

    public let path: String
    public let vendor: String?
    public let levels: [SlideLevel]
    public let mpp: MPP
    public let objectivePower: Double?
    public let bounds: SlideBounds?
    public let associatedImages: [AssociatedImage]
    public let properties: [String: String]

    public init(slide: Slide) {
        path = slide.path
        vendor = slide.vendor
        levels = slide.levels
        mpp = MPP(x: slide.mpp.x, y: slide.mpp.y, source: slide.mpp.source.rawValue)
        objectivePower = slide.objectivePower
        bounds = slide.bounds
        associatedImages = slide.associatedImages
        properties = slide.properties
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(vendor, forKey: .vendor)
        try c.encode(levels, forKey: .levels)
        try c.encode(mpp, forKey: .mpp)
        try c.encode(objectivePower, forKey: .objectivePower)
        try c.encode(bounds, forKey: .bounds)
        try c.encode(associatedImages, forKey: .associatedImages)
        try c.encode(properties, forKey: .properties)
    }

    enum CodingKeys: String, CodingKey {
        case path, vendor, levels, mpp, objectivePower, bounds, associatedImages, properties
    }

    /// A few lines for people: vendor, levels, mpp with its source, objective, associated images.
    public var humanReadable: String {
        var lines = [path]
        lines.append("  vendor:            \(vendor ?? "unknown")")
        for (i, level) in levels.enumerated() {
            lines.append("  level \(i):           \(level.width) x \(level.height)  (downsample \(format(level.downsample)))")
        }
        if let x = mpp.x, let y = mpp.y {
            lines.append("  microns per pixel: \(format(x)) x \(format(y))  (from \(mpp.source))")
        } else {
            lines.append("  microns per pixel: unknown (no openslide.mpp-x/y, no TIFF resolution tags); use --level, not --mpp, with this slide")
        }
        lines.append("  objective power:   \(objectivePower.map { format($0) + "x" } ?? "unknown")")
        if let bounds { lines.append("  bounds:            \(bounds.width) x \(bounds.height) at (\(bounds.x), \(bounds.y))") }
        let associated = associatedImages.map { "\($0.name) (\($0.width) x \($0.height))" }.joined(separator: ", ")
        lines.append("  associated images: \(associated.isEmpty ? "none" : associated)")
        lines.append("  properties:        \(properties.count) (--json lists them)")
        return lines.joined(separator: "\n")
    }

    private func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e9 ? String(Int(value)) : String(format: "%.6g", value)
    }
}

/// The body of `gigapatch-inspect`: reports every slide, even after failures.
public enum InspectCommand {
    /// Reports each path; returns the number of slides that could not be opened.
    public static func run(paths: [String], json: Bool, output: Output) -> Int {
        var failures = 0
        for path in paths {
            do {
                let report = SlideReport(slide: try Slide(path: path))
                output.line(json ? try JSONLine.encode(report) : report.humanReadable)
            } catch {
                failures += 1
                let message = String(describing: error)
                if json, let line = try? JSONLine.encode(["path": path, "error": message]) { output.line(line) }
                output.diagnostic("gigapatch-inspect: \(message)")
            }
        }
        return failures
    }
}
