import Foundation
import Manifests
import Testing

struct ManifestTests {
    static func write(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID().uuidString).csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func pandaTrainCSVIncludingNegative() throws {
        let path = try Self.write("""
            image_id,data_provider,isup_grade,gleason_score
            0005f7aaab2800f6170c399693a96917,karolinska,0,0+0
            000920ad0b612851f8e01bcc880d9b3d,karolinska,0,negative
            0018ae58b01bdadc8e347995b69f99aa,radboud,4,4+4
            bad1,radboud,7,5+5
            """)
        let m = try Manifest.read(path: path)
        #expect(m.format == .panda && m.classes == 6)
        #expect(m.entries.map(\.key) == ["0005f7aaab2800f6170c399693a96917", "000920ad0b612851f8e01bcc880d9b3d", "0018ae58b01bdadc8e347995b69f99aa"])
        #expect(m.entries[0].reference == "0005f7aaab2800f6170c399693a96917.tiff")
        #expect(m.entries.map(\.label) == [0, 0, 4])
        #expect(m.entries[1].fields["gleason_score"] == "0+0")
        #expect(m.entries[1].fields["gleason_score_raw"] == "negative")
        #expect(m.entries[2].fields == ["data_provider": "radboud", "gleason_score": "4+4"])
        #expect(m.problems.count == 1)
        #expect(m.problems[0].line == 5 && m.problems[0].description.hasPrefix("\(path):5: label 7 is outside"))
    }

    @Test func genericFormWithSplitsFoldsAndFreeFields() throws {
        let path = try Self.write("""
            slide,label,split,fold,patient
            images/a.tiff,1,train,0,p1
            b.svs,,Validation,,p2
            c.ndpi,x,test,,p3
            d.tiff,2,holdout,,p4
            images/a.tiff,0,train,1,p1
            e.tiff,3,test,2,p5
            """)
        let m = try Manifest.read(path: path, classes: 3)
        #expect(m.format == .generic)
        #expect(m.entries.map(\.key) == ["a", "b"])
        #expect(m.entries[0].label == 1 && m.entries[0].split == "train" && m.entries[0].fold == 0 && m.entries[0].fields == ["patient": "p1"])
        #expect(m.entries[1].label == nil && m.entries[1].split == "val")
        #expect(m.problems.map(\.line) == [4, 5, 6, 7])
        #expect(m.problems[0].message.contains("not a whole number"))
        #expect(m.problems[1].message.contains("holdout"))
        #expect(m.problems[2].message.contains("already listed on line 2"))
        #expect(m.problems[3].message.contains("outside the class range 0...2"))
    }

    @Test func unusableFilesThrow() throws {
        #expect(throws: ManifestError.self) { try Manifest.read(path: "/nonexistent/train.csv") }
        let path = try Self.write("name,grade\nx,1\n")
        let error = try #require(throws: ManifestError.self) { try Manifest.read(path: path) }
        #expect(error.description.contains("neither PANDA"))
    }
}
