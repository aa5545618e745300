import Foundation
import Yams

/// Options written in a file (`--config`): a YAML or JSON mapping from option names (as on the command line, without
/// the dashes) to values.
public enum ConfigFile {
    /// Reads the mapping in `path`.
    /// - Throws: `ConfigFileError` naming the file and, for unknown options, the accepted names.
    public static func load(_ path: String, allowed: [String]) throws -> [String: Any] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigFileError(message: "\(path): cannot read the config file; check the path")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch {
            throw ConfigFileError(message: "\(path): not valid YAML or JSON (\(error))")
        }
        guard let mapping = parsed as? [String: Any] else {
            throw ConfigFileError(message: "\(path): expected a mapping of option names to values (e.g. 'epochs: 5')")
        }
        let unknown = mapping.keys.filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ConfigFileError(message: "\(path): unknown option\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")); accepted: \(allowed.sorted().joined(separator: ", "))")
        }
        return mapping
    }

    /// Decodes `T` from a mapping (through JSON, so `Codable` defaults and key names apply).
    public static func decode<T: Decodable>(_ type: T.Type, from mapping: [String: Any], source: String) throws -> T {
        do {
            let data = try JSONSerialization.data(withJSONObject: mapping)
            return try JSONDecoder().decode(T.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigFileError(message: "\(source): option '\(key)' has the wrong type (\(context.debugDescription))")
        } catch {
            throw ConfigFileError(message: "\(source): \(error)")
        }
    }
}

/// A config file that cannot be used.
public struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
