import Basics
import Foundation

/// A report that could not be made, with the file and what to do.
public struct ReportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension RunReport {
    /// Reads a run directory (metrics.jsonl, options.json, checkpoints/best or last) and, when given, a predictions CSV,
    /// a heatmaps folder (SLIDE.jpg, embedded beside each prediction), an ingest QC folder and summary, and a
    /// pipeline's run.json.
    public static func load(runDirectory: String, predictions: String? = nil, heatmaps: String? = nil, qcDirectory: String? = nil,
                            ingestSummary: String? = nil, pipelineRun: String? = nil) throws -> RunReport {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: runDirectory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError("\(runDirectory): no such run directory; give the --out folder of gigapatch-train")
        }
        let folder = URL(fileURLWithPath: runDirectory)
        var report = RunReport(title: "Gigapatch run \(folder.lastPathComponent)", runDirectory: folder.standardizedFileURL.path,
                               toolVersion: Provenance.version, commit: Provenance.gitCommit(near: FileManager.default.currentDirectoryPath))
        let metrics = folder.appendingPathComponent("metrics.jsonl").path
        if let text = try? String(contentsOfFile: metrics, encoding: .utf8) {
            for (n, line) in text.split(separator: "\n").enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                do { report.epochs.append(try JSONDecoder().decode(Epoch.self, from: Data(line.utf8))) } catch {
                    throw ReportError("\(metrics): line \(n + 1) is not an epoch record (\(error)); the file may be from another tool")
                }
            }
        }
        if let data = FileManager.default.contents(atPath: folder.appendingPathComponent("options.json").path),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            report.options = flatten(object)
            if let s = object["select-by"] as? String { report.selectBy = s }
        }
        for name in ["best", "last"] {
            let path = folder.appendingPathComponent("checkpoints/\(name).safetensors").path
            guard let meta = safetensorsMetadata(path) else { continue }
            if let info = meta["gigapatch"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) {
                report.checkpoint = [("checkpoint", path)] + flatten(info).filter { $0.key != "stain" && !$0.key.hasPrefix("stain.") }
                if info["stain"] != nil { report.checkpoint.append(("stain", "normalised (target recorded in the checkpoint)")) }
            }
            if name == "best", let state = meta["trainer_state"].flatMap({ try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }) {
                report.bestEpoch = state["bestEpoch"] as? Int ?? state["epochsDone"] as? Int
            }
            break
        }
        if let predictions {
            report.predictionsFile = predictions
            report.predictions = try readPredictions(predictions, heatmaps: heatmaps)
        }
        if let qcDirectory { report.qc = try readQC(qcDirectory, summary: ingestSummary) }
        if let pipelineRun {
            guard let data = FileManager.default.contents(atPath: pipelineRun) else { throw ReportError("\(pipelineRun): no such run.json") }
            report.pipelineRun = String(decoding: data, as: UTF8.self)
        }
        return report
    }

    /// Writes report.html atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(html(), to: path)
    }

    /// Nested JSON as sorted dotted keys and text values.
    static func flatten(_ object: [String: Any], prefix: String = "") -> [(key: String, value: String)] {
        object.keys.sorted().flatMap { key -> [(key: String, value: String)] in
            let name = prefix.isEmpty ? key : prefix + "." + key
            switch object[key] {
            case let nested as [String: Any]: return flatten(nested, prefix: name)
            case let array as [Any]: return [(name, array.map { "\($0)" }.joined(separator: ", "))]
            case let value?: return [(name, "\(value)")]
            default: return []
            }
        }
    }

    /// A safetensors file's `__metadata__`, reading only its header.
    static func safetensorsMetadata(_ path: String) -> [String: String]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let size = try? handle.read(upToCount: 8), size.count == 8 else { return nil }
        let length = size.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard length < 100_000_000, let header = try? handle.read(upToCount: Int(length)),
              let object = try? JSONSerialization.jsonObject(with: header) as? [String: Any] else { return nil }
        return object["__metadata__"] as? [String: String]
    }

    /// gigapatch-predict's CSV (image_id, predicted, prob_0.., label), with each slide's heatmap JPEG when present.
    static func readPredictions(_ path: String, heatmaps: String?) throws -> [Prediction] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ReportError("\(path): no such predictions file") }
        let lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.first?.split(separator: ",").map(String.init), header.first == "image_id", header.contains("predicted") else {
            throw ReportError("\(path): not a gigapatch-predict CSV (image_id,predicted,prob_...,label); write one with --format csv")
        }
        let probColumns = header.enumerated().filter { $0.element.hasPrefix("prob_") }.map(\.offset)
        let predictedColumn = header.firstIndex(of: "predicted")!, labelColumn = header.firstIndex(of: "label")
        return lines.dropFirst().compactMap { line in
            // Slide names with commas are quoted: split on the last fields, which are numbers.
            var fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if fields.count > header.count {
                let extra = fields.count - header.count
                fields = [fields[0 ... extra].joined(separator: ",")] + fields[(extra + 1)...]
            }
            guard fields.count == header.count, let predicted = Int(fields[predictedColumn]) else { return nil }
            var id = fields[0]
            if id.hasPrefix("\""), id.hasSuffix("\""), id.count >= 2 { id = String(id.dropFirst().dropLast()).replacingOccurrences(of: "\"\"", with: "\"") }
            let stem = id.replacingOccurrences(of: "/", with: "_")
            let picture = heatmaps.flatMap { FileManager.default.contents(atPath: ($0 as NSString).appendingPathComponent(stem + ".jpg")) }
            let thumbnail = heatmaps.flatMap { FileManager.default.contents(atPath: ($0 as NSString).appendingPathComponent(stem + ".thumb.jpg")) }
            return Prediction(imageID: id, label: labelColumn.flatMap { Int(fields[$0]) }, predicted: predicted,
                              probabilities: probColumns.map { Double(fields[$0]) ?? 0 },
                              heatmap: picture.map { "data:image/jpeg;base64," + $0.base64EncodedString() },
                              thumbnail: thumbnail.map { "data:image/jpeg;base64," + $0.base64EncodedString() })
        }
    }

    /// The QC pictures of a folder (JPEG or PNG), and from an ingest summary the failed slides with their reasons.
    static func readQC(_ folder: String, summary: String?) throws -> [QCItem] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { throw ReportError("\(folder): no such QC folder") }
        var items: [QCItem] = names.sorted().compactMap { name in
            let ext = (name as NSString).pathExtension.lowercased()
            guard ["jpg", "jpeg", "png"].contains(ext), let data = FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent(name)) else { return nil }
            return QCItem(name: (name as NSString).deletingPathExtension, picture: "data:image/\(ext == "png" ? "png" : "jpeg");base64," + data.base64EncodedString(), problem: nil)
        }
        if let summary, let data = FileManager.default.contents(atPath: summary),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let failures = object["failures"] as? [[String: Any]] {
            items += failures.compactMap { f in (f["slide"] as? String).map { QCItem(name: $0, picture: nil, problem: "failed: " + (f["error"] as? String ?? "?")) } }
            let empty = object["empty_slides"] as? [[String: Any]] ?? []
            items += empty.compactMap { f in (f["slide"] as? String).map { QCItem(name: $0, picture: nil, problem: "empty: " + (f["error"] as? String ?? "no patches")) } }
        }
        return items
    }
}
