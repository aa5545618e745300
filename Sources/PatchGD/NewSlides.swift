import Cluster
import Basics
import Foundation
import Ingest
import PatchIndex

/// Slides that are not in the index yet: a folder (recursive) and/or a manifest, for `gigapatch-predict --slides`.
public struct NewSlides: Sendable {
    public var slidesDirectory: String?
    public var manifest: String?
    public var workers: Int

    public init(slidesDirectory: String?, manifest: String?, workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.slidesDirectory = slidesDirectory
        self.manifest = manifest
        self.workers = workers
    }

    /// How far a slide's microns per pixel may be from the training slides' median before it is named (25%).
    public static let mppTolerance = 0.25

    /// Ingests the slides with exactly the tiling and tissue settings the checkpoint was trained on, into the
    /// checkpoint's dataset name in `db` (empty: `OUTSTEM.index.sqlite` beside `out`, which `db` is set to).
    /// Names slides whose mpp is unknown or far from the training slides'; failed slides are returned, not fatal.
    /// Under mpirun every rank works on slides and rank 0 writes the index (`IngestStage`); the others return an empty summary.
    static func ingest(_ slides: NewSlides, checkpoint: String, db: inout String, out: String, comm: Communicator = .single,
                       log: (String) -> Void) throws -> IngestSummary {
        guard FileManager.default.fileExists(atPath: checkpoint) else {
            throw TrainingError("\(checkpoint): no such checkpoint; give RUNDIR/checkpoints/best.safetensors or last.safetensors", kind: .missingFile)
        }
        let info = try Checkpoint.info(checkpoint).info
        let settings: IngestSettings
        do { settings = try JSONDecoder().decode(IngestSettings.self, from: Data(info.tilingParams.utf8)) } catch {
            throw TrainingError("\(checkpoint): its tiling settings (\(info.tilingParams)) cannot be read back (\(error)); ingest the slides with gigapatch-ingest and the training's preset and options, then predict with --db", kind: .badData)
        }
        if db.isEmpty {
            let url = URL(fileURLWithPath: out)
            db = url.deletingLastPathComponent().appendingPathComponent(url.deletingPathExtension().lastPathComponent + ".index.sqlite").path
        }
        log("ingesting new slides into \(db) (dataset \(info.dataset)) with the checkpoint's tiling: \(info.tilingParams)")
        let request = IngestRequest(slidesDirectory: slides.slidesDirectory, manifestPath: slides.manifest, databasePath: db, dataset: info.dataset,
                                    settings: settings, workers: max(1, slides.workers))
        let summary: IngestSummary
        do { summary = try IngestStage.run(request, comm: comm, log: { _ in }, progress: { _, _, _ in }) } catch {
            throw TrainingError("\(error)", kind: error.errorKind)
        }
        guard comm.isRoot else { return summary }
        log(summary.table)
        if let trained = info.trainingMPP {
            let index = try PatchIndex.existing(at: db)
            if let datasetID = try index.existingDatasetID(named: info.dataset) {
                for line in mppWarnings(keys: summary.keys, mpps: try index.micronsPerPixel(datasetID: datasetID), trained: trained) { log(line) }
            }
        }
        return summary
    }

    /// Warnings for slides (of `keys`, ingested: in `mpps`) that do not state their microns per pixel, or state one
    /// more than `mppTolerance` away from the training slides' median `trained`.
    static func mppWarnings(keys: [String], mpps: [String: Double?], trained: Double) -> [String] {
        let unknown = keys.filter { mpps[$0].map { $0 == nil } ?? false }
        let far = keys.compactMap { key -> String? in
            guard let value = mpps[key] ?? nil, abs(value - trained) > mppTolerance * trained else { return nil }
            return "\(key) (\(String(format: "%.3f", value)))"
        }
        var lines: [String] = []
        if !unknown.isEmpty {
            lines.append("warning: \(unknown.count) slide\(unknown.count == 1 ? " does" : "s do") not state microns per pixel (the training slides' median is \(String(format: "%.3f", trained))): \(unknown.prefix(10).joined(separator: ", "))")
        }
        if !far.isEmpty {
            lines.append("warning: \(far.count) slide\(far.count == 1 ? " is" : "s are") scanned more than 25% away from the training slides' \(String(format: "%.3f", trained)) microns per pixel; their predictions may not hold: \(far.prefix(10).joined(separator: ", "))")
        }
        return lines
    }
}
