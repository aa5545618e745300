import Foundation
import GRDB

/// The parameters that define a patch grid; `paramsKey` (canonical JSON of all of them) identifies a tiling.
public struct TilingSpec: Sendable, Equatable {
    public var patchSize: Int
    public var stride: Int
    public var level: Int?
    public var targetMPP: Double?
    public var minTissue: Double
    public var tissueMethod: String
    /// Every parameter as canonical JSON (sorted keys).
    public var paramsJSON: String
    /// Every parameter at its default, as the code that wrote `paramsJSON` has them (JSON).
    public var defaultsJSON: String
    /// What identifies the tiling (`TilingIdentity`): parameters away from their defaults.
    public var identity: String { TilingIdentity.of(params: paramsJSON, defaults: defaultsJSON) }

    public init(patchSize: Int, stride: Int, level: Int?, targetMPP: Double?, minTissue: Double, tissueMethod: String, paramsJSON: String,
                defaultsJSON: String = "{}") {
        self.patchSize = patchSize
        self.stride = stride
        self.level = level
        self.targetMPP = targetMPP
        self.minTissue = minTissue
        self.tissueMethod = tissueMethod
        self.paramsJSON = paramsJSON
        self.defaultsJSON = defaultsJSON
    }
}

/// A slide file as found on disk, before it is opened.
public struct SlideFile: Sendable, Equatable {
    public var key: String
    public var path: String
    public var size: Int64
    public var mtime: Double

    public init(key: String, path: String, size: Int64, mtime: Double) {
        self.key = key
        self.path = path
        self.size = size
        self.mtime = mtime
    }
}

/// What to do with a slide under a tiling, decided when its work begins.
public enum IngestDecision: Sendable, Equatable {
    /// Already finished (`done`, `empty`, or `failed` and not retried): nothing to do.
    case skip(slideID: Int64, status: String)
    /// Marked running; this is attempt number `attempt`.
    case process(slideID: Int64, attempt: Int)
    /// It was left running by processes that died twice: now marked failed with `reason`.
    case giveUp(slideID: Int64, reason: String)
}

/// What OpenSlide reported of a slide, stored with its patches.
public struct SlideMetadata: Sendable, Equatable, Codable {
    public var vendor: String?
    public var width: Int
    public var height: Int
    public var levelCount: Int
    public var mppX: Double?
    public var mppY: Double?
    public var mppSource: String
    public var quickHash: String?

    public init(vendor: String?, width: Int, height: Int, levelCount: Int, mppX: Double?, mppY: Double?, mppSource: String, quickHash: String?) {
        self.vendor = vendor
        self.width = width
        self.height = height
        self.levelCount = levelCount
        self.mppX = mppX
        self.mppY = mppY
        self.mppSource = mppSource
        self.quickHash = quickHash
    }
}

/// The grid a slide got under a tiling.
public struct GridInfo: Sendable, Equatable, Codable {
    public var rows: Int
    public var cols: Int
    public var readLevel: Int
    public var readSize: Int

    public init(rows: Int, cols: Int, readLevel: Int, readSize: Int) {
        self.rows = rows
        self.cols = cols
        self.readLevel = readLevel
        self.readSize = readSize
    }
}

extension PatchIndex {
    /// Crashes a slide may cause (left `running` by a dead process) before it is marked failed and skipped.
    public static let maximumCrashes = 2

    /// The tiling of the dataset with this identity (`TilingIdentity`), created when new. Tilings written before
    /// identities existed get theirs here, from their parameters and the spec's defaults.
    public func tilingID(datasetID: Int64, spec: TilingSpec) throws -> Int64 {
        try writer.write { db in
            for row in try Row.fetchAll(db, sql: "SELECT id, params FROM tilings WHERE dataset_id = ? AND identity IS NULL", arguments: [datasetID]) {
                try db.execute(sql: "UPDATE tilings SET identity = ?, defaults = ? WHERE id = ?",
                               arguments: [TilingIdentity.of(params: row["params"], defaults: spec.defaultsJSON), spec.defaultsJSON, row["id"] as Int64])
            }
            if let id = try Int64.fetchOne(db, sql: "SELECT id FROM tilings WHERE dataset_id = ? AND identity = ? ORDER BY id",
                                           arguments: [datasetID, spec.identity]) { return id }
            try db.execute(sql: """
                INSERT INTO tilings (dataset_id, params_key, patch_size, stride, level, target_mpp, min_tissue, tissue_method, params, identity, defaults)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [datasetID, spec.paramsJSON, spec.patchSize, spec.stride, spec.level, spec.targetMPP,
                                 spec.minTissue, spec.tissueMethod, spec.paramsJSON, spec.identity, spec.defaultsJSON])
            return db.lastInsertedRowID
        }
    }

    /// The tiling of a dataset that a checkpoint was trained on: by its recorded identity, else by its parameters
    /// normalised with each tiling's stored defaults, else (tilings from before identities) by equal parameters.
    public func tiling(datasetID: Int64, matchingParams params: String, identity: String?) throws -> Int64? {
        try writer.read { db in
            for row in try Row.fetchAll(db, sql: "SELECT id, params, identity, defaults FROM tilings WHERE dataset_id = ? ORDER BY id",
                                        arguments: [datasetID]) {
                let stored: String? = row["identity"], defaults: String? = row["defaults"], own: String = row["params"]
                if let identity, identity == stored { return row["id"] }
                if let stored, let defaults, TilingIdentity.of(params: params, defaults: defaults) == stored { return row["id"] }
                if own == params { return row["id"] }
            }
            return nil
        }
    }

    /// Registers `file` in the dataset and decides whether it needs work under `tilingID`; marks it running if so.
    ///
    /// A file whose path, size or modification time changed since it was registered loses its patches under
    /// every tiling and starts over. A slide found `running` was interrupted by a dead process: it is retried,
    /// unless that happened `maximumCrashes` times, in which case it is marked failed and skipped.
    public func begin(datasetID: Int64, tilingID: Int64, file: SlideFile, retryFailed: Bool) throws -> IngestDecision {
        try writer.write { db in
            var slideID: Int64
            if let row = try Row.fetchOne(db, sql: "SELECT id, path, file_size, file_mtime FROM slides WHERE dataset_id = ? AND slide_key = ?",
                                          arguments: [datasetID, file.key]) {
                slideID = row["id"]
                let unchanged = (row["path"] as String) == file.path && (row["file_size"] as Int64?) == file.size
                    && (row["file_mtime"] as Double?) == file.mtime
                if !unchanged {
                    try db.execute(sql: "UPDATE slides SET path = ?, file_size = ?, file_mtime = ? WHERE id = ?",
                                   arguments: [file.path, file.size, file.mtime, slideID])
                    try db.execute(sql: "DELETE FROM patches WHERE slide_id = ?", arguments: [slideID])
                    try db.execute(sql: """
                        UPDATE slide_tilings SET status = 'pending', error = NULL, attempts = 0, patch_count = NULL,
                        updated_at = CURRENT_TIMESTAMP WHERE slide_id = ?
                        """, arguments: [slideID])
                }
            } else {
                try db.execute(sql: "INSERT INTO slides (dataset_id, slide_key, path, file_size, file_mtime) VALUES (?, ?, ?, ?, ?)",
                               arguments: [datasetID, file.key, file.path, file.size, file.mtime])
                slideID = db.lastInsertedRowID
            }
            try db.execute(sql: "INSERT OR IGNORE INTO slide_tilings (slide_id, tiling_id) VALUES (?, ?)", arguments: [slideID, tilingID])
            let state = try Row.fetchOne(db, sql: "SELECT status, attempts, owner FROM slide_tilings WHERE slide_id = ? AND tiling_id = ?",
                                         arguments: [slideID, tilingID])!
            let status: String = state["status"], attempts: Int = state["attempts"], owner: String? = state["owner"]
            switch status {
            case "running" where owner.map(ProcessOwner.isAlive) == true:
                // Another live process is ingesting it (two ingests of one folder): leave it to that one.
                return .skip(slideID: slideID, status: "running")
            case "done", "empty":
                return .skip(slideID: slideID, status: status)
            case "failed" where !retryFailed:
                return .skip(slideID: slideID, status: status)
            case "running" where attempts >= Self.maximumCrashes:
                let reason = "the process died \(attempts) times while ingesting this slide; skipped (check it with gigapatch-inspect, then re-run with --retry-failed)"
                try db.execute(sql: "UPDATE slide_tilings SET status = 'failed', error = ?, updated_at = CURRENT_TIMESTAMP WHERE slide_id = ? AND tiling_id = ?",
                               arguments: [reason, slideID, tilingID])
                return .giveUp(slideID: slideID, reason: reason)
            default:
                let attempt = status == "running" ? attempts + 1 : (status == "failed" ? 1 : attempts + 1)
                try db.execute(sql: """
                    UPDATE slide_tilings SET status = 'running', attempts = ?, error = NULL, owner = ?, updated_at = CURRENT_TIMESTAMP
                    WHERE slide_id = ? AND tiling_id = ?
                    """, arguments: [attempt, ProcessOwner.current, slideID, tilingID])
                return .process(slideID: slideID, attempt: attempt)
            }
        }
    }

    /// Gives back the slides this process has running (it was told to stop: Ctrl-C, a scheduler's time limit):
    /// they become pending again and the interrupted attempt is not counted as a crash. Returns how many.
    @discardableResult
    public func releaseRunningSlides() throws -> Int {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE slide_tilings SET status = 'pending', attempts = max(0, attempts - 1), owner = NULL, updated_at = CURRENT_TIMESTAMP
                WHERE status = 'running' AND owner = ?
                """, arguments: [ProcessOwner.current])
            return db.changesCount
        }
    }

    /// Stores a slide's kept cells and final status (`done`, or `empty` without patches) in one transaction.
    public func finish(slideID: Int64, tilingID: Int64, metadata: SlideMetadata, grid: GridInfo, cells patches: [PatchCell]) throws {
        try writer.write { db in
            try db.execute(sql: """
                UPDATE slides SET vendor = ?, width = ?, height = ?, level_count = ?, mpp_x = ?, mpp_y = ?, mpp_source = ?, quick_hash = ?
                WHERE id = ?
                """, arguments: [metadata.vendor, metadata.width, metadata.height, metadata.levelCount, metadata.mppX, metadata.mppY,
                                 metadata.mppSource, metadata.quickHash, slideID])
            try db.execute(sql: "DELETE FROM patches WHERE slide_id = ? AND tiling_id = ?", arguments: [slideID, tilingID])
            let insert = try db.makeStatement(sql: """
                INSERT INTO patches (slide_id, tiling_id, level0_x, level0_y, level, read_size, grid_row, grid_col, tissue_fraction)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
            for p in patches {
                try insert.execute(arguments: [slideID, tilingID, p.level0X, p.level0Y, grid.readLevel, grid.readSize, p.gridRow, p.gridCol, p.tissueFraction])
            }
            try db.execute(sql: """
                UPDATE slide_tilings SET status = ?, error = NULL, patch_count = ?, grid_rows = ?, grid_cols = ?, read_level = ?, read_size = ?,
                updated_at = CURRENT_TIMESTAMP WHERE slide_id = ? AND tiling_id = ?
                """, arguments: [patches.isEmpty ? "empty" : "done", patches.count, grid.rows, grid.cols, grid.readLevel, grid.readSize,
                                 slideID, tilingID])
        }
    }

    /// Marks a slide failed under a tiling with a one-line reason (its earlier patches, if any, are removed).
    public func fail(slideID: Int64, tilingID: Int64, error: String) throws {
        try writer.write { db in
            try db.execute(sql: "DELETE FROM patches WHERE slide_id = ? AND tiling_id = ?", arguments: [slideID, tilingID])
            try db.execute(sql: "UPDATE slide_tilings SET status = 'failed', error = ?, patch_count = NULL, updated_at = CURRENT_TIMESTAMP WHERE slide_id = ? AND tiling_id = ?",
                           arguments: [error, slideID, tilingID])
        }
    }

    /// Records a slide's class (nil = unknown) and free fields.
    public func setLabel(slideID: Int64, label: Int?, fields: [String: String]) throws {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys]), as: UTF8.self)
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO slide_labels (slide_id, label, fields) VALUES (?, ?, ?)
                ON CONFLICT(slide_id) DO UPDATE SET label = excluded.label, fields = excluded.fields
                """, arguments: [slideID, label, json])
        }
    }

    /// Records a slide's split and fold under a split scheme.
    public func setSplit(slideID: Int64, scheme: String = "default", split: String, fold: Int?) throws {
        try writer.write { db in
            try db.execute(sql: """
                INSERT INTO splits (slide_id, scheme, split, fold) VALUES (?, ?, ?, ?)
                ON CONFLICT(slide_id, scheme) DO UPDATE SET split = excluded.split, fold = excluded.fold
                """, arguments: [slideID, scheme, split, fold])
        }
    }

    /// How many slides of a tiling are in each status.
    public func statusCounts(tilingID: Int64) throws -> [String: Int] {
        try writer.read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM slide_tilings WHERE tiling_id = ? GROUP BY status", arguments: [tilingID]) {
                counts[row["status"]] = row["n"]
            }
            return counts
        }
    }

    /// The status, error and attempts of a slide (by key) under a tiling.
    public func slideStatus(datasetID: Int64, slideKey: String, tilingID: Int64) throws -> (status: String, error: String?, attempts: Int)? {
        try writer.read { db in
            try Row.fetchOne(db, sql: """
                SELECT st.status, st.error, st.attempts FROM slide_tilings st JOIN slides s ON s.id = st.slide_id
                WHERE s.dataset_id = ? AND s.slide_key = ? AND st.tiling_id = ?
                """, arguments: [datasetID, slideKey, tilingID]).map { ($0["status"], $0["error"], $0["attempts"]) }
        }
    }

    /// All patches of one slide in one tiling, in grid order (the trainer's query).
    public func patches(slideID: Int64, tilingID: Int64) throws -> [PatchRecord] {
        try writer.read { db in
            try PatchRecord.fetchAll(db, sql: "SELECT * FROM patches WHERE tiling_id = ? AND slide_id = ? ORDER BY grid_row, grid_col",
                                     arguments: [tilingID, slideID])
        }
    }

    /// The id of a slide by key in a dataset.
    public func slideID(datasetID: Int64, slideKey: String) throws -> Int64? {
        try writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM slides WHERE dataset_id = ? AND slide_key = ?", arguments: [datasetID, slideKey]) }
    }
}
