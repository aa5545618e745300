import Foundation

/// Where command output goes: standard output for results, standard error for diagnostics.
public struct Output: Sendable {
    public var line: @Sendable (String) -> Void
    public var diagnostic: @Sendable (String) -> Void

    public init(line: @escaping @Sendable (String) -> Void, diagnostic: @escaping @Sendable (String) -> Void) {
        self.line = line
        self.diagnostic = diagnostic
    }

    /// The process's standard output and standard error.
    public static let standard = Output(
        line: { text in FileHandle.standardOutput.write(Data((text + "\n").utf8)) },
        diagnostic: { text in FileHandle.standardError.write(Data((text + "\n").utf8)) })
}

/// JSON encoding for one-object-per-line output: compact, keys sorted, slashes unescaped.
public enum JSONLine {
    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
