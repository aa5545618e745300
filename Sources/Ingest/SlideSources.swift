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
    /// Subfolders that cannot be listed are returned in `unreadable` (path and reason), not skipped silently.
    /// - Throws: `IngestError` naming the folder when it is missing or cannot be listed itself.
    public static func discover(in directory: String, unreadable: inout [(path: String, reason: String)]) throws(IngestError) -> [SlideSource] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw IngestError("\(directory): slide folder not found", kind: .missingFile)
        }
        let root = URL(fileURLWithPath: directory).standardizedFileURL.path
        var sources: [SlideSource] = []
        var pending = [""]
        while let relative = pending.popLast() {
            let folder = relative.isEmpty ? root : root + "/" + relative
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
                let reason = access(folder, R_OK | X_OK) != 0 ? "permission denied" : "cannot list it (\(error.localizedDescription))"
                if relative.isEmpty { throw IngestError("\(directory): cannot list the slide folder: \(reason)", kind: .unreadable) }
                unreadable.append((folder, reason))
                continue
            }
            for name in names {
                let path = relative.isEmpty ? name : relative + "/" + name
                var sub: ObjCBool = false
                guard FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &sub) else { continue }
                if sub.boolValue {
                    // Symbolic links to folders are not followed (a link back up would loop for ever).
                    let type = (try? FileManager.default.attributesOfItem(atPath: root + "/" + path))?[.type] as? FileAttributeType
                    if type != .typeSymbolicLink { pending.append(path) }
                } else if extensions.contains((name as NSString).pathExtension.lowercased()) {
                    sources.append(SlideSource(key: (path as NSString).deletingPathExtension, path: root + "/" + path, entry: nil))
                }
            }
        }
        return sources.sorted { $0.key < $1.key }
    }

    /// Every slide file under `directory`, ignoring subfolders that cannot be listed.
    public static func discover(in directory: String) throws(IngestError) -> [SlideSource] {
        var ignored: [(path: String, reason: String)] = []
        return try discover(in: directory, unreadable: &ignored)
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
