import Foundation

/// One slide named by a manifest, with its label, split and free fields.
public struct ManifestEntry: Sendable, Equatable {
    /// 1-based line in the manifest file.
    public var line: Int
    /// The slide's identifier: PANDA's `image_id`, or the generic `slide` column's file name without extension.
    public var key: String
    /// How the manifest names the file: a path (absolute, or relative to the manifest's folder or the slide folder) or a file name.
    public var reference: String
    /// Class index; nil when the manifest leaves it empty.
    public var label: Int?
    /// train, val or test; nil when not given.
    public var split: String?
    public var fold: Int?
    /// Every other column (PANDA: `data_provider`, `gleason_score` with "negative" as 0+0, ...).
    public var fields: [String: String]
}

/// A row the manifest reader refused, with where it is.
public struct ManifestProblem: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var line: Int
    public var message: String

    public init(path: String, line: Int, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { "\(path):\(line): \(message)" }
}

/// A manifest that could not be read at all (missing file, no header, unknown columns).
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): manifest: \(message)" }
}

/// The manifest forms the ingest stage reads.
public enum ManifestFormat: String, Sendable {
    /// PANDA's `train.csv`: `image_id,data_provider,isup_grade,gleason_score`; the slide is `<image_id>.tiff`.
    case panda
    /// `slide,label[,split][,fold]` plus any extra columns.
    case generic
}

/// A parsed manifest: the usable entries and the refused rows.
public struct Manifest: Sendable {
    public var path: String
    public var format: ManifestFormat
    public var entries: [ManifestEntry]
    public var problems: [ManifestProblem]
    /// Number of classes the labels were checked against (6 for PANDA's ISUP grades).
    public var classes: Int?

    /// Reads a manifest, detecting its form from the header.
    ///
    /// - Parameter classes: labels must be `0 ..< classes` (PANDA: 6 unless given); rows outside are refused.
    /// - Throws: `ManifestError` only when the file as a whole is unusable; bad rows become `problems`.
    public static func read(path: String, classes: Int? = nil) throws(ManifestError) -> Manifest {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ManifestError(path: path, message: FileManager.default.fileExists(atPath: path) ? "cannot read as UTF-8 text" : "no such file")
        }
        let table: CSVTable
        do { table = try CSVTable(text: text) } catch { throw ManifestError(path: path, message: error.description) }
        return try parse(table, path: path, classes: classes)
    }

    /// Parses an already-read table (see `read`).
    public static func parse(_ table: CSVTable, path: String, classes: Int? = nil) throws(ManifestError) -> Manifest {
        let isPanda = table.column("image_id") != nil && table.column("isup_grade") != nil
        guard isPanda || (table.column("slide") != nil && table.column("label") != nil) else {
            throw ManifestError(path: path, message: "header \(table.header.joined(separator: ",")) is neither PANDA's (image_id,data_provider,isup_grade,gleason_score) nor the generic form (slide,label[,split][,fold],...)")
        }
        let classes = classes ?? (isPanda ? 6 : nil)
        var manifest = Manifest(path: path, format: isPanda ? .panda : .generic, entries: [], problems: [], classes: classes)
        var seen: [String: Int] = [:]
        for row in table.rows {
            var values: [String: String] = [:]
            for (i, name) in table.header.enumerated() { values[name] = row.fields[i].trimmingCharacters(in: .whitespaces) }
            func problem(_ message: String) { manifest.problems.append(ManifestProblem(path: path, line: row.line, message: message)) }
            let key: String, reference: String, labelText: String
            if isPanda {
                key = values.removeValue(forKey: "image_id") ?? ""
                reference = key + ".tiff"
                labelText = values.removeValue(forKey: "isup_grade") ?? ""
                if let gleason = values["gleason_score"], gleason.lowercased() == "negative" {
                    values["gleason_score"] = "0+0"
                    values["gleason_score_raw"] = gleason
                }
            } else {
                reference = values.removeValue(forKey: "slide") ?? ""
                key = ((reference as NSString).lastPathComponent as NSString).deletingPathExtension
                labelText = values.removeValue(forKey: "label") ?? ""
            }
            guard !key.isEmpty else { problem("empty slide name"); continue }
            if let first = seen[key] { problem("slide \(key) is already listed on line \(first)"); continue }
            var label: Int?
            if !labelText.isEmpty {
                guard let value = Int(labelText) else { problem("label '\(labelText)' is not a whole number"); continue }
                if value < 0 || (classes.map { value >= $0 } ?? false) {
                    problem("label \(value) is outside the class range 0...\((classes ?? 1) - 1)")
                    continue
                }
                label = value
            }
            var split: String?
            if let text = values.removeValue(forKey: "split"), !text.isEmpty {
                switch text.lowercased() {
                case "train", "training": split = "train"
                case "val", "valid", "validation": split = "val"
                case "test", "testing": split = "test"
                default: problem("split '\(text)' is not train, val or test"); continue
                }
            }
            var fold: Int?
            if let text = values.removeValue(forKey: "fold"), !text.isEmpty {
                guard let value = Int(text), value >= 0 else { problem("fold '\(text)' is not a whole number 0 or more"); continue }
                fold = value
            }
            seen[key] = row.line
            manifest.entries.append(ManifestEntry(line: row.line, key: key, reference: reference, label: label, split: split,
                                                  fold: fold, fields: values))
        }
        return manifest
    }
}
