import Foundation
import Manifests

/// A slide to ingest: its key in the dataset, its file, and the manifest row that named it (if any).
public struct SlideSource: Sendable {
    public var key: String
    public var path: String
    public var entry: ManifestEntry?
}

/// Finds slide files in folders and resolves manifest rows to files.
public enum SlideSources {
    /// File extensions OpenSlide 3.4.1 reads, plus plain TIFF.
    public static let extensions: Set<String> = ["svs", "tif", "tiff", "ndpi", "vms", "vmu", "scn", "mrxs", "svslide", "bif"]

    /// Every slide file under `directory` (recursively), keyed by its path relative to the folder without extension.
    public static func discover(in directory: String) throws(IngestError) -> [SlideSource] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IngestError("\(directory): slide folder not found")
        }
        let root = URL(fileURLWithPath: directory).standardizedFileURL
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { throw IngestError("\(directory): cannot list the folder") }
        var sources: [SlideSource] = []
        while let relative = walker.nextObject() as? String {
            let ext = (relative as NSString).pathExtension.lowercased()
            guard extensions.contains(ext) else { continue }
            sources.append(SlideSource(key: (relative as NSString).deletingPathExtension, path: root.appendingPathComponent(relative).path, entry: nil))
        }
        return sources.sorted { $0.key < $1.key }
    }

    /// Resolves each manifest row to a file: an absolute path, a path relative to the manifest's folder or the slide
    /// folder, or a file name (or key) found among `discovered`. Rows without a file become problems.
    public static func resolve(_ manifest: Manifest, slidesDirectory: String?, discovered: [SlideSource]) -> (sources: [SlideSource], problems: [ManifestProblem]) {
        let fm = FileManager.default
        let manifestDirectory = (manifest.path as NSString).deletingLastPathComponent
        var byName: [String: [String]] = [:]
        for source in discovered {
            byName[(source.path as NSString).lastPathComponent, default: []].append(source.path)
            byName[(source.key as NSString).lastPathComponent, default: []].append(source.path)
        }
        var sources: [SlideSource] = [], problems: [ManifestProblem] = []
        for entry in manifest.entries {
            var candidates = [String]()
            if entry.reference.hasPrefix("/") { candidates.append(entry.reference) }
            candidates.append((manifestDirectory.isEmpty ? "." : manifestDirectory) + "/" + entry.reference)
            if let slidesDirectory { candidates.append(slidesDirectory + "/" + entry.reference) }
            var found = candidates.first { fm.fileExists(atPath: $0) }
            if found == nil {
                let matches = Set(byName[(entry.reference as NSString).lastPathComponent, default: []] + byName[entry.key, default: []])
                if matches.count == 1 { found = matches.first }
                else if matches.count > 1 {
                    problems.append(ManifestProblem(path: manifest.path, line: entry.line, message: "slide \(entry.reference) matches \(matches.count) files; give its path"))
                    continue
                }
            }
            guard let path = found else {
                let places = slidesDirectory.map { "the manifest's folder or \($0)" } ?? "the manifest's folder (give --slides DIR?)"
                problems.append(ManifestProblem(path: manifest.path, line: entry.line, message: "slide \(entry.reference) not found in \(places)"))
                continue
            }
            sources.append(SlideSource(key: entry.key, path: URL(fileURLWithPath: path).standardizedFileURL.path, entry: entry))
        }
        return (sources, problems)
    }
}
