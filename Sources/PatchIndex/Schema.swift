import GRDB

/// The patch index's tables, created by versioned migrations (the only place SQL DDL lives).
///
/// ```
/// datasets        one row per dataset name
/// slides          a slide file in a dataset: path, size + mtime (+ optional hash), vendor, level-0 size, mpp and its source
/// slide_labels    a slide's class index plus free fields (JSON: PANDA's data_provider, gleason_score, ...)
/// splits          train/val/test and fold number of a slide under a named split scheme
/// tilings         the parameters that produced a patch grid (patch size, stride, level or mpp, tissue filter) and
///                 their identity (a hash of the parameters away from their defaults)
/// slide_tilings   ingest status of one slide under one tiling: pending/running/done/empty/failed, error, attempts
/// patches         one kept patch: level-0 x/y, level read, size read at that level, grid row/col, tissue fraction
/// runs            a training run: method, parameters (JSON), start/end, status
/// predictions     a run's prediction for a slide: class and probabilities (JSON array)
/// ```
///
/// Ingest status belongs to (slide, tiling), not to the slide alone: a slide that is done under one
/// tiling is still pending under a new one, and the two grids live side by side.
public enum Schema {
    /// Slide ingest states.
    public static let statuses = ["pending", "running", "done", "empty", "failed"]

    /// The migrator that brings any database (empty or older) to the current schema.
    public static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: datasets, slides, labels, splits, tilings, patches, runs, predictions") { db in
            try db.create(table: "datasets") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("created_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
            }
            try db.create(table: "slides") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).notNull().indexed().references("datasets", onDelete: .cascade)
                t.column("slide_key", .text).notNull()          // image_id / file stem, unique in the dataset
                t.column("path", .text).notNull()
                t.column("file_size", .integer)
                t.column("file_mtime", .double)                  // seconds since 1970
                t.column("quick_hash", .text)                    // openslide.quickhash-1 when available
                t.column("vendor", .text)
                t.column("width", .integer)                      // level 0
                t.column("height", .integer)
                t.column("level_count", .integer)
                t.column("mpp_x", .double)
                t.column("mpp_y", .double)
                t.column("mpp_source", .text).notNull().defaults(to: "unknown")
                    .check { ["openslide", "tiff-resolution", "unknown"].contains($0) }
                t.uniqueKey(["dataset_id", "slide_key"])
            }
            try db.create(table: "slide_labels") { t in
                t.primaryKey("slide_id", .integer).references("slides", onDelete: .cascade)
                t.column("label", .integer)                      // class index; NULL when unknown
                t.column("fields", .jsonText).notNull().defaults(to: "{}")
            }
            try db.create(table: "splits") { t in
                t.column("slide_id", .integer).notNull().indexed().references("slides", onDelete: .cascade)
                t.column("scheme", .text).notNull().defaults(to: "default")
                t.column("split", .text).notNull().check { ["train", "val", "test"].contains($0) }
                t.column("fold", .integer)
                t.primaryKey(["slide_id", "scheme"])
            }
            try db.create(table: "tilings") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).notNull().indexed().references("datasets", onDelete: .cascade)
                t.column("params_key", .text).notNull()          // canonical text of all parameters
                t.column("patch_size", .integer).notNull()       // output pixels at the target resolution
                t.column("stride", .integer).notNull()
                t.column("level", .integer)                      // set when tiling by level
                t.column("target_mpp", .double)                  // set when tiling by microns per pixel
                t.column("min_tissue", .double).notNull()
                t.column("tissue_method", .text).notNull()
                t.column("params", .jsonText).notNull()          // every parameter, as JSON
                t.column("created_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
                t.uniqueKey(["dataset_id", "params_key"])
            }
            try db.create(table: "slide_tilings") { t in
                t.column("slide_id", .integer).notNull().indexed().references("slides", onDelete: .cascade)
                t.column("tiling_id", .integer).notNull().indexed().references("tilings", onDelete: .cascade)
                t.column("status", .text).notNull().defaults(to: "pending").check { Schema.statuses.contains($0) }
                t.column("error", .text)
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("patch_count", .integer)
                t.column("grid_rows", .integer)
                t.column("grid_cols", .integer)
                t.column("read_level", .integer)
                t.column("read_size", .integer)
                t.column("updated_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
                t.primaryKey(["slide_id", "tiling_id"])
            }
            try db.create(table: "patches") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("slide_id", .integer).notNull().indexed().references("slides", onDelete: .cascade)
                t.column("tiling_id", .integer).notNull().indexed().references("tilings", onDelete: .cascade)
                t.column("level0_x", .integer).notNull()
                t.column("level0_y", .integer).notNull()
                t.column("level", .integer).notNull()            // pyramid level read
                t.column("read_size", .integer).notNull()        // side read at that level (resampled to patch_size)
                t.column("grid_row", .integer).notNull()
                t.column("grid_col", .integer).notNull()
                t.column("tissue_fraction", .double).notNull()
            }
            // The trainer's query: all patches of one slide in one tiling, in grid order.
            try db.create(index: "patches_by_tiling_slide", on: "patches",
                          columns: ["tiling_id", "slide_id", "grid_row", "grid_col"], unique: true)
            try db.create(index: "patches_by_slide", on: "patches", columns: ["slide_id"])
            try db.create(table: "runs") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("dataset_id", .integer).indexed().references("datasets", onDelete: .cascade)
                t.column("name", .text).notNull()
                t.column("directory", .text)
                t.column("method", .text).notNull()              // patchgd | gd
                t.column("params", .jsonText).notNull()
                t.column("status", .text).notNull().defaults(to: "running")
                    .check { ["running", "done", "failed", "interrupted"].contains($0) }
                t.column("error", .text)
                t.column("started_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
                t.column("finished_at", .datetime)
            }
            try db.create(table: "predictions") { t in
                t.column("run_id", .integer).notNull().indexed().references("runs", onDelete: .cascade)
                t.column("slide_id", .integer).notNull().indexed().references("slides", onDelete: .cascade)
                t.column("predicted", .integer).notNull()
                t.column("probabilities", .jsonText).notNull()   // JSON array, one per class
                t.column("created_at", .datetime).notNull().defaults(sql: "CURRENT_TIMESTAMP")
                t.primaryKey(["run_id", "slide_id"])
            }
        }
        migrator.registerMigration("v2: tiling identity (a hash of the parameters away from their defaults)") { db in
            try db.alter(table: "tilings") { t in
                t.add(column: "identity", .text)                 // TilingIdentity; filled for older rows by the next ingest
                t.add(column: "defaults", .jsonText)             // the parameters' defaults when the identity was made
            }
            try db.create(index: "tilings_by_identity", on: "tilings", columns: ["dataset_id", "identity"])
        }
        migrator.registerMigration("v3: owners (host:pid) of running slides and runs") { db in
            try db.alter(table: "slide_tilings") { t in t.add(column: "owner", .text) }   // the process ingesting it
            try db.alter(table: "runs") { t in t.add(column: "owner", .text) }            // the process training it
        }
        return migrator
    }
}
