import Foundation

/// CSV as manifests use it (RFC 4180): comma-separated, fields with commas, quotes or newlines in double quotes.
public enum CSV {
    /// A parse error with the 1-based line it happened on.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let message: String

        public init(line: Int, message: String) {
            self.line = line
            self.message = message
        }

        public var description: String { "line \(line): \(message)" }
    }

    /// Parses `text` into rows of fields, each row with the 1-based line it starts on. Blank lines are skipped.
    public static func parse(_ text: String) throws(ParseError) -> [(line: Int, fields: [String])] {
        var rows: [(line: Int, fields: [String])] = []
        var fields: [String] = []
        var field = ""
        var quoted = false, wasQuoted = false
        var line = 1, rowLine = 1
        var chars = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func endRow() {
            fields.append(field)
            if !(fields.count == 1 && fields[0].isEmpty && !wasQuoted) { rows.append((rowLine, fields)) }
            fields = []
            field = ""
            wasQuoted = false
        }
        while let c = pending ?? chars.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = chars.next()
                    if next == "\"" { field.unicodeScalars.append("\"") } else { quoted = false; pending = next }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"":
                guard field.isEmpty else { throw ParseError(line: line, message: "a quote inside an unquoted field; quote the whole field") }
                quoted = true
                wasQuoted = true
            case ",":
                fields.append(field)
                field = ""
            case "\r":
                let next = chars.next()
                if next != "\n" { pending = next }
                endRow()
                line += 1
                rowLine = line
            case "\n":
                endRow()
                line += 1
                rowLine = line
            default:
                field.unicodeScalars.append(c)
            }
        }
        if quoted { throw ParseError(line: rowLine, message: "a quoted field is not closed") }
        if !field.isEmpty || !fields.isEmpty || wasQuoted { endRow() }
        return rows
    }

    /// One field, quoted when it holds a comma, a quote or a line break.
    public static func escape(_ field: String) -> String {
        guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A table as CSV text: header then rows, each line ending in "\n".
    public static func format(header: [String], rows: [[String]]) -> String {
        ([header] + rows).map { $0.map(escape).joined(separator: ",") + "\n" }.joined()
    }
}

/// A CSV table with a header: rows addressed by column name.
public struct CSVTable: Sendable {
    public let header: [String]
    /// Data rows with their 1-based line numbers in the file.
    public let rows: [(line: Int, fields: [String])]

    /// Parses text whose first row is the header; rows with a different number of fields are refused with their line.
    public init(text: String) throws(CSV.ParseError) {
        let parsed = try CSV.parse(text)
        guard let first = parsed.first else { throw CSV.ParseError(line: 1, message: "empty file: a header row is needed") }
        header = first.fields.map { $0.trimmingCharacters(in: .whitespaces) }
        for row in parsed.dropFirst() where row.fields.count != header.count {
            throw CSV.ParseError(line: row.line, message: "\(row.fields.count) fields, but the header has \(header.count)")
        }
        rows = Array(parsed.dropFirst())
    }

    /// The index of `column`, nil when absent.
    public func column(_ name: String) -> Int? { header.firstIndex(of: name) }
}
