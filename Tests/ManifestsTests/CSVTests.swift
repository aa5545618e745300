import Manifests
import Testing

struct CSVTests {
    @Test func parsesQuotesCommasNewlinesAndCRLF() throws {
        let text = "a,b,c\r\n1,\"x,y\",\"say \"\"hi\"\"\"\n\n2,\"two\nlines\",\n3,,z"
        let rows = try CSV.parse(text)
        #expect(rows.map(\.fields) == [["a", "b", "c"], ["1", "x,y", "say \"hi\""], ["2", "two\nlines", ""], ["3", "", "z"]])
        #expect(rows.map(\.line) == [1, 2, 4, 6])
    }

    @Test func formatRoundTrips() throws {
        let rows = [["images/a.tiff", "3", "1,2,3,4;5,6,7,8"], ["q\"uote", "", "new\nline"]]
        let text = CSV.format(header: ["slide", "label", "boxes"], rows: rows)
        let table = try CSVTable(text: text)
        #expect(table.header == ["slide", "label", "boxes"])
        #expect(table.rows.map(\.fields) == rows)
        #expect(table.column("boxes") == 2)
    }

    @Test func errorsNameTheLine() {
        #expect(throws: CSV.ParseError(line: 3, message: "2 fields, but the header has 3")) { try CSVTable(text: "a,b,c\n1,2,3\n4,5\n") }
        #expect(throws: CSV.ParseError.self) { try CSV.parse("a,\"open\n") }
        #expect(throws: CSV.ParseError.self) { try CSVTable(text: "") }
    }
}
