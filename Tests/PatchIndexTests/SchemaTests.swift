import Foundation
import GRDB
@testable import PatchIndex
import TestSupport
import Testing

struct SchemaTests {
    @Test func migrationsCreateEveryTableOnAnEmptyFileInWALMode() throws {
        let dir = TemporaryDirectory()
        let index = try PatchIndex(path: dir.file("sub/index.sqlite"))
        let tables = try index.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'grdb_%' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        }
        #expect(tables == ["datasets", "patches", "predictions", "runs", "slide_labels", "slide_tilings", "slides", "splits", "tilings"])
        let mode = try index.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let indexes = try index.writer.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'patches'") }
        #expect(indexes.contains("patches_by_tiling_slide"))
        // Opening again migrates nothing and keeps data.
        let id = try index.datasetID(named: "demo")
        let reopened = try PatchIndex(path: dir.file("sub/index.sqlite"))
        #expect(try reopened.datasetID(named: "demo") == id)
    }

    @Test func foreignKeysRejectOrphans() throws {
        let index = try PatchIndex()
        #expect(throws: DatabaseError.self) {
            try index.writer.write { db in
                var patch = PatchRecord(slideID: 999, tilingID: 999, level0X: 0, level0Y: 0, level: 0, readSize: 256,
                                        gridRow: 0, gridCol: 0, tissueFraction: 1)
                try patch.insert(db)
            }
        }
        #expect(throws: DatabaseError.self) {
            try index.writer.write { db in
                var slide = SlideRecord(datasetID: 42, slideKey: "a", path: "/a.svs")
                try slide.insert(db)
            }
        }
    }

    @Test func patchesOfOneSlideInOneTilingComeBackInGridOrderAndCascade() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        try index.writer.write { db in
            var slide = SlideRecord(datasetID: dataset, slideKey: "s1", path: "/s1.tiff", width: 1024, height: 512, mppSource: "tiff-resolution")
            try slide.insert(db)
            try db.execute(sql: """
                INSERT INTO tilings (dataset_id, params_key, patch_size, stride, level, min_tissue, tissue_method, params)
                VALUES (?, 'k', 256, 256, 0, 0.5, 'otsu', '{}')
                """, arguments: [dataset])
            let tiling = db.lastInsertedRowID
            for (row, col) in [(1, 1), (0, 2), (0, 0)] {
                var patch = PatchRecord(slideID: slide.id!, tilingID: tiling, level0X: col * 256, level0Y: row * 256, level: 0,
                                        readSize: 256, gridRow: row, gridCol: col, tissueFraction: 0.75)
                try patch.insert(db)
            }
            // The same grid cell twice in one tiling is refused.
            #expect(throws: DatabaseError.self) {
                var dup = PatchRecord(slideID: slide.id!, tilingID: tiling, level0X: 0, level0Y: 0, level: 0, readSize: 256,
                                      gridRow: 0, gridCol: 0, tissueFraction: 1)
                try dup.insert(db)
            }
        }
        let cells = try index.writer.read { db in
            try PatchRecord.fetchAll(db, sql: "SELECT * FROM patches WHERE tiling_id = 1 AND slide_id = 1 ORDER BY grid_row, grid_col")
                .map { [$0.gridRow, $0.gridCol] }
        }
        #expect(cells == [[0, 0], [0, 2], [1, 1]])
        try index.writer.write { try $0.execute(sql: "DELETE FROM slides") }
        #expect(try index.writer.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM patches") } == 0)
    }

    @Test func statusAndSplitValuesAreChecked() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        try index.writer.write { db in
            try db.execute(sql: "INSERT INTO slides (dataset_id, slide_key, path) VALUES (?, 's', '/s')", arguments: [dataset])
            #expect(throws: DatabaseError.self) {
                try db.execute(sql: "INSERT INTO splits (slide_id, split) VALUES (1, 'holdout')")
            }
            try db.execute(sql: "INSERT INTO splits (slide_id, split, fold) VALUES (1, 'val', 0)")
            try db.execute(sql: "INSERT INTO tilings (dataset_id, params_key, patch_size, stride, min_tissue, tissue_method, params) VALUES (?, 'k', 256, 256, 0.5, 'none', '{}')", arguments: [dataset])
            #expect(throws: DatabaseError.self) {
                try db.execute(sql: "INSERT INTO slide_tilings (slide_id, tiling_id, status) VALUES (1, 1, 'finished')")
            }
            try db.execute(sql: "INSERT INTO slide_tilings (slide_id, tiling_id, status) VALUES (1, 1, 'running')")
        }
    }
}
