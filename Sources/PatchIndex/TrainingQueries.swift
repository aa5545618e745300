import Foundation
import GRDB

/// A tiling as the trainer sees it: its id, patch size and every parameter that made it.
public struct TilingInfo: Sendable, Equatable {
    public var id: Int64
    public var patchSize: Int
    public var stride: Int
    public var level: Int?
    public var targetMPP: Double?
    /// Every parameter as canonical JSON.
    public var paramsJSON: String
    /// `TilingIdentity` (nil for a tiling from before identities that no ingest has touched since).
    public var identity: String?
    /// Slides ingested (`done`) under it.
    public var doneSlides: Int
}

/// One ingested slide ready for training or prediction: where it is, its grid under a tiling, label and split.
public struct TrainingSlide: Sendable, Equatable {
    public var id: Int64
    public var key: String
    public var path: String
    /// Class index; nil when unknown.
    public var label: Int?
    /// train/val/test under the split scheme; nil when the slide has no split.
    public var split: String?
    public var fold: Int?
    public var gridRows: Int
    public var gridCols: Int
    public var patchCount: Int
}

/// A stored prediction for one slide.
public struct PredictionRow: Sendable, Equatable {
    public var slideID: Int64
    public var predicted: Int
    public var probabilities: [Double]

    public init(slideID: Int64, predicted: Int, probabilities: [Double]) {
        self.slideID = slideID
        self.predicted = predicted
        self.probabilities = probabilities
    }
}

extension PatchIndex {
    /// The id of an existing dataset, or nil.
    public func existingDatasetID(named name: String) throws -> Int64? {
        try writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM datasets WHERE name = ?", arguments: [name]) }
    }

    /// Names of every dataset, oldest first.
    public func datasetNames() throws -> [String] {
        try writer.read { try String.fetchAll($0, sql: "SELECT name FROM datasets ORDER BY id") }
    }

    /// Tilings of a dataset, oldest first, with how many slides are done under each.
    public func tilings(datasetID: Int64) throws -> [TilingInfo] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT t.id, t.patch_size, t.stride, t.level, t.target_mpp, t.params, t.identity,
                       (SELECT count(*) FROM slide_tilings st WHERE st.tiling_id = t.id AND st.status = 'done') AS done
                FROM tilings t WHERE t.dataset_id = ? ORDER BY t.id
                """, arguments: [datasetID]).map {
                TilingInfo(id: $0["id"], patchSize: $0["patch_size"], stride: $0["stride"], level: $0["level"],
                           targetMPP: $0["target_mpp"], paramsJSON: $0["params"], identity: $0["identity"], doneSlides: $0["done"])
            }
        }
    }

    /// Slides of a dataset that are `done` under a tiling, with labels and splits of `scheme`, ordered by key.
    public func trainingSlides(datasetID: Int64, tilingID: Int64, scheme: String = "default") throws -> [TrainingSlide] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.id, s.slide_key, s.path, l.label, sp.split, sp.fold, st.grid_rows, st.grid_cols, st.patch_count
                FROM slides s
                JOIN slide_tilings st ON st.slide_id = s.id AND st.tiling_id = ? AND st.status = 'done'
                LEFT JOIN slide_labels l ON l.slide_id = s.id
                LEFT JOIN splits sp ON sp.slide_id = s.id AND sp.scheme = ?
                WHERE s.dataset_id = ? ORDER BY s.slide_key
                """, arguments: [tilingID, scheme, datasetID]).map {
                TrainingSlide(id: $0["id"], key: $0["slide_key"], path: $0["path"], label: $0["label"], split: $0["split"],
                              fold: $0["fold"], gridRows: $0["grid_rows"], gridCols: $0["grid_cols"], patchCount: $0["patch_count"])
            }
        }
    }

    /// Microns per pixel (x) of a dataset's slides by key; nil where the slide did not say.
    public func micronsPerPixel(datasetID: Int64) throws -> [String: Double?] {
        try writer.read { db in
            var out: [String: Double?] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT slide_key, mpp_x FROM slides WHERE dataset_id = ?", arguments: [datasetID]) {
                out[row["slide_key"]] = row["mpp_x"] as Double?
            }
            return out
        }
    }

    /// Records the start of a training run; returns its id.
    public func beginRun(datasetID: Int64, name: String, directory: String, method: String, paramsJSON: String) throws -> Int64 {
        try writer.write { db in
            try db.execute(sql: "INSERT INTO runs (dataset_id, name, directory, method, params, owner) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [datasetID, name, directory, method, paramsJSON, ProcessOwner.current])
            return db.lastInsertedRowID
        }
    }

    /// Records the end of a run: `done`, `failed` (with the error) or `interrupted`; `running` reopens a resumed run.
    public func finishRun(id: Int64, status: String, error: String? = nil) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE runs SET status = ?, error = ?, finished_at = CASE WHEN ? = 'running' THEN NULL ELSE CURRENT_TIMESTAMP END,
                owner = CASE WHEN ? = 'running' THEN ? ELSE owner END
                WHERE id = ?
                """, arguments: [status, error, status, status, ProcessOwner.current, id])
        }
    }

    /// Marks `interrupted` every run left `running` by a process that is gone (killed, or the machine went down);
    /// returns their ids. Runs from before owners were recorded count as gone.
    @discardableResult
    public func markAbandonedRunsInterrupted() throws -> [Int64] {
        try writer.write { db in
            let abandoned = try Row.fetchAll(db, sql: "SELECT id, owner FROM runs WHERE status = 'running'").filter { row in
                (row["owner"] as String?).map { !ProcessOwner.isAlive($0) } ?? true
            }.map { $0["id"] as Int64 }
            for id in abandoned {
                try db.execute(sql: "UPDATE runs SET status = 'interrupted', finished_at = CURRENT_TIMESTAMP WHERE id = ?", arguments: [id])
            }
            return abandoned
        }
    }

    /// A run's status, error and parameters (tests, reports).
    public func run(id: Int64) throws -> (status: String, error: String?, method: String, paramsJSON: String, finished: Bool)? {
        try writer.read { db in
            try Row.fetchOne(db, sql: "SELECT status, error, method, params, finished_at FROM runs WHERE id = ?", arguments: [id]).map {
                ($0["status"], $0["error"], $0["method"], $0["params"], ($0["finished_at"] as String?) != nil)
            }
        }
    }

    /// The id of the newest run whose directory is `directory`, if any (prediction links to the run that trained).
    public func runID(directory: String) throws -> Int64? {
        try writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM runs WHERE directory = ? ORDER BY id DESC LIMIT 1", arguments: [directory]) }
    }

    /// Stores predictions of a run in one transaction, replacing earlier ones for the same slides.
    public func savePredictions(runID: Int64, _ rows: [PredictionRow]) throws {
        try writer.write { db in
            let statement = try db.makeStatement(sql: """
                INSERT INTO predictions (run_id, slide_id, predicted, probabilities) VALUES (?, ?, ?, ?)
                ON CONFLICT(run_id, slide_id) DO UPDATE SET predicted = excluded.predicted, probabilities = excluded.probabilities,
                created_at = CURRENT_TIMESTAMP
                """)
            for row in rows {
                let json = "[" + row.probabilities.map { String(format: "%.6g", $0) }.joined(separator: ",") + "]"
                try statement.execute(arguments: [runID, row.slideID, row.predicted, json])
            }
        }
    }

    /// A run's predictions, by slide id.
    public func predictions(runID: Int64) throws -> [PredictionRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: "SELECT slide_id, predicted, probabilities FROM predictions WHERE run_id = ? ORDER BY slide_id",
                             arguments: [runID]).map { row in
                let json: String = row["probabilities"]
                let values = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [Double] ?? []
                return PredictionRow(slideID: row["slide_id"], predicted: row["predicted"], probabilities: values)
            }
        }
    }
}

/// A slide with its label and free fields (what splitting needs).
public struct LabelledSlide: Sendable, Equatable {
    public var id: Int64
    public var key: String
    public var label: Int?
    public var fields: [String: String]
}

extension PatchIndex {
    /// Every slide of a dataset with its label and fields, ordered by key.
    public func labelledSlides(datasetID: Int64) throws -> [LabelledSlide] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.id, s.slide_key, l.label, l.fields FROM slides s LEFT JOIN slide_labels l ON l.slide_id = s.id
                WHERE s.dataset_id = ? ORDER BY s.slide_key
                """, arguments: [datasetID]).map { row in
                let json: String = row["fields"] ?? "{}"
                let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
                return LabelledSlide(id: row["id"], key: row["slide_key"], label: row["label"],
                                     fields: object.mapValues { "\($0)" })
            }
        }
    }

    /// Writes a split scheme for many slides in one transaction (replacing their earlier assignment under that scheme).
    public func setSplits(_ assignments: [(slideID: Int64, split: String, fold: Int?)], scheme: String) throws {
        try writer.write { db in
            let statement = try db.makeStatement(sql: """
                INSERT INTO splits (slide_id, scheme, split, fold) VALUES (?, ?, ?, ?)
                ON CONFLICT(slide_id, scheme) DO UPDATE SET split = excluded.split, fold = excluded.fold
                """)
            for a in assignments { try statement.execute(arguments: [a.slideID, scheme, a.split, a.fold]) }
        }
    }
}

/// Where one indexed patch is, with its slide's path: what a plain read loop needs.
public struct PatchLocationRow: Sendable, Equatable {
    public var path: String
    public var level0X: Int
    public var level0Y: Int
    public var level: Int
    public var readSize: Int
}

extension PatchIndex {
    /// The newest tiling of the index, or nil when it has none.
    public func newestTilingID() throws -> Int64? {
        try writer.read { try Int64.fetchOne($0, sql: "SELECT max(id) FROM tilings") }
    }

    /// Every patch of a tiling with its slide's path, slide by slide in grid order (benchmarks' read loops).
    public func patchLocations(tilingID: Int64) throws -> [PatchLocationRow] {
        try writer.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.path, p.level0_x, p.level0_y, p.level, p.read_size FROM patches p JOIN slides s ON s.id = p.slide_id
                WHERE p.tiling_id = ? ORDER BY p.slide_id, p.grid_row, p.grid_col
                """, arguments: [tilingID]).map {
                PatchLocationRow(path: $0["path"], level0X: $0["level0_x"], level0Y: $0["level0_y"], level: $0["level"], readSize: $0["read_size"])
            }
        }
    }
}
