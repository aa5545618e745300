import Foundation
import GRDB
import SlideIO
import TestSupport
import Testing
@testable import Ingest

/// Ingest under mpirun (2 ranks over TCP on loopback): slides shared by the work queue, one writer. Skipped without
/// Open MPI (scripts/setup --tests installs it).
@Suite(.serialized) struct MPIIngestTests {
    static let skip = Executables.mpirun == nil || Executables.directory == nil

    /// Slides of different sizes and tissue (one with none), so the ranks finish at different times.
    static func folder() throws -> TemporaryDirectory {
        let dir = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.file("slides"), withIntermediateDirectories: true)
        for i in 0 ..< 7 {
            let side = 256 + 128 * (i % 3)
            let blobs = i == 6 ? [] : [Blob(centerX: Double(side) / 2, centerY: Double(side) / 3, radiusX: Double(40 + 10 * i), radiusY: 50)]
            try SyntheticSlide(width: side, height: side, blobs: blobs).write(to: dir.file("slides/s\(i).tiff"))
        }
        return dir
    }

    static func arguments(_ dir: TemporaryDirectory, db: String) -> [String] {
        ["--slides", dir.file("slides"), "--db", dir.file(db), "--dataset", "d", "--preset", "ultramnist", "--patch-size", "64", "--workers", "1", "--qc-dir", dir.file("qc-" + db)]
    }

    /// Every slide's status and patches (key, status, then x, y, level, size, row, col, tissue per patch).
    static func contents(_ path: String) throws -> [String] {
        let db = try DatabaseQueue(path: path)
        defer { try? db.close() }
        return try db.read { db in
            let statuses = try Row.fetchAll(db, sql: """
                SELECT s.slide_key, st.status, st.patch_count, t.params FROM slides s JOIN slide_tilings st ON st.slide_id = s.id
                JOIN tilings t ON t.id = st.tiling_id ORDER BY s.slide_key
                """).map { "\($0[0] as String) \($0[1] as String) \(($0[2] as Int?) ?? -1) \($0[3] as String)" }
            let patches = try Row.fetchAll(db, sql: """
                SELECT s.slide_key, p.level0_x, p.level0_y, p.level, p.read_size, p.grid_row, p.grid_col, p.tissue_fraction
                FROM patches p JOIN slides s ON s.id = p.slide_id ORDER BY s.slide_key, p.grid_row, p.grid_col
                """).map { row in (0 ..< 8).map { "\(row[$0] as DatabaseValue)" }.joined(separator: " ") }
            return statuses + patches
        }
    }

    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func twoRanksMakeTheIndexOneProcessMakes() throws {
        let dir = try Self.folder()
        let one = try Executables.run("ingest", Self.arguments(dir, db: "one.sqlite"))
        #expect(one.status == 0, "\(one.errors)")
        let two = try Executables.mpi(2, "ingest", Self.arguments(dir, db: "two.sqlite"))
        #expect(two.status == 0, "\(two.errors.suffix(1500))")
        let a = try Self.contents(dir.file("one.sqlite")), b = try Self.contents(dir.file("two.sqlite"))
        #expect(a.count > 7 && a == b, "\(a.count) rows against \(b.count)")
        #expect(two.errors.contains("; rank 0") && two.errors.contains("; rank 1"), "both ranks ingest slides: \(two.errors)")
        #expect(two.output.contains("empty") && two.output.components(separatedBy: "status   slides").count == 2, "one table, from rank 0: \(two.output)")
        let pictures = try FileManager.default.contentsOfDirectory(atPath: dir.file("qc-two.sqlite"))
        #expect(pictures.count == 7, "\(pictures)")
        // A re-run on 2 ranks finds every slide done.
        let again = try Executables.mpi(2, "ingest", Self.arguments(dir, db: "two.sqlite"))
        #expect(again.status == 0 && again.output.contains("skipped       7"), "\(again.output)")
    }

    /// Rank 0 dies (SIGKILL) right after marking slide s3 running: the job stops; a re-run finishes the rest and the
    /// index is the one a single uninterrupted process makes.
    @Test(.disabled(if: skip, "needs Open MPI (scripts/setup --tests installs it)"))
    func aKilledTwoRankIngestResumes() throws {
        let dir = try Self.folder()
        let killed = try Executables.mpi(2, "ingest", Self.arguments(dir, db: "two.sqlite"), environment: [IngestStage.faultInjectionVariable: "s3"])
        #expect(killed.status != 0 && killed.status != -1, "status \(killed.status)")
        let statuses = try Self.contents(dir.file("two.sqlite")).filter { $0.hasPrefix("s") && $0.contains(" running ") }
        #expect(statuses.count >= 1, "s3 is left running: \(statuses)")
        let resumed = try Executables.mpi(2, "ingest", Self.arguments(dir, db: "two.sqlite"))
        #expect(resumed.status == 0, "\(resumed.errors.suffix(1500))")
        let one = try Executables.run("ingest", Self.arguments(dir, db: "one.sqlite"))
        #expect(one.status == 0)
        #expect(try Self.contents(dir.file("one.sqlite")) == Self.contents(dir.file("two.sqlite")))
    }
}
