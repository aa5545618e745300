import ArgumentParser
import Foundation
import Yams

/// Options as data: a mapping from option names (the flags without dashes) to values, read from and written to
/// files, and turned into command-line arguments so that one parser (the declarations in `TrainConfig`) reads every
/// layer. A later argument wins over an earlier one, which is what makes the layers' precedence.
public enum OptionMapping {
    /// Option names of every field of a group of options, in declaration order, with the value each holds
    /// (nil for an unset optional).
    static func fields(of arguments: any ParsableArguments) -> [(key: String, value: Any?)] {
        Mirror(reflecting: arguments).children.flatMap { child -> [(key: String, value: Any?)] in
            guard let label = child.label, label.hasPrefix("_") else { return [] }
            if let group = child.value as? any NestedArguments { return fields(of: group.nested) }
            guard let wrapper = child.value as? any ParsedValue else { return [] }
            return [(optionName(String(label.dropFirst())), unwrapped(wrapper.value))]
        }
    }

    /// The long flag of a property: `headFeatures` -> `head-features` (as the argument parser names it), or the
    /// custom name it declares.
    static func optionName(_ property: String) -> String {
        if let custom = customNames[property] { return custom }
        var name = ""
        for character in property {
            if character.isUppercase { name += "-" }
            name += character.lowercased()
        }
        return name
    }

    /// Properties whose flag is not their name (`@Option(name: .customLong(...))`).
    static let customNames = ["initWeights": "init"]

    /// `Optional.none` as nil, other values as themselves.
    static func unwrapped(_ value: Any) -> Any? {
        let mirror = Mirror(reflecting: value)
        guard mirror.displayStyle == .optional else { return value }
        return mirror.children.first.map(\.value)
    }

    /// A value as JSON: strings, numbers, booleans; choices by their raw text.
    static func json(_ value: Any) -> Any {
        switch value {
        case let v as Bool: return v
        case let v as Int: return v
        case let v as Int64: return v
        case let v as UInt64: return v
        case let v as Double: return v
        case let v as String: return v
        case let v as any ExpressibleByArgument: return v.defaultValueDescription
        default: return "\(value)"
        }
    }

    /// The mapping of a group's set values (unset optionals left out), leaving out `excluded` keys.
    public static func mapping(of arguments: any ParsableArguments, excluding excluded: Set<String> = []) -> [String: Any] {
        var result: [String: Any] = [:]
        for (key, value) in fields(of: arguments) where !excluded.contains(key) {
            if let value { result[key] = json(value) }
        }
        return result
    }

    /// The arguments that give `mapping`'s values: `--key value`, and `--key` / `--no-key` for booleans.
    /// - Throws: `TrainingError` (bad option) naming `source` for an unknown key or a value that is not a scalar.
    public static func arguments(_ mapping: [String: Any], allowed: [String], source: String) throws -> [String] {
        let unknown = mapping.keys.filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw TrainingError("\(source): unknown option\(unknown.count > 1 ? "s" : "") \(unknown.joined(separator: ", ")); accepted: \(allowed.sorted().joined(separator: ", "))", kind: .badOption)
        }
        var arguments: [String] = []
        for key in mapping.keys.sorted() {
            let value = mapping[key]!
            if value is NSNull { continue }
            if let flag = boolean(value) {
                arguments.append(flag ? "--\(key)" : "--no-\(key)")
            } else if let text = value as? String {
                arguments += ["--\(key)", text]
            } else if let number = value as? NSNumber {
                arguments += ["--\(key)", number.stringValue]
            } else {
                throw TrainingError("\(source): option '\(key)' must be a single value (text, number or true/false), not \(value)", kind: .badOption)
            }
        }
        return arguments
    }

    /// A boolean from YAML (Swift `Bool`) or JSON (an `NSNumber` of boolean type; numbers 0 and 1 are not booleans).
    static func boolean(_ value: Any) -> Bool? {
        if type(of: value) == Bool.self { return value as? Bool }
        guard let number = value as? NSNumber, String(cString: number.objCType) == "c" else { return nil }
        return number.boolValue
    }

    /// Reads a YAML or JSON mapping of option names to values.
    /// - Throws: `TrainingError` naming the file: missing, unreadable, not a mapping.
    public static func load(_ path: String) throws -> [String: Any] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TrainingError("\(path): no such options file; check the path", kind: .missingFile)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrainingError("\(path): cannot read the options file (permissions, or not UTF-8 text)", kind: .unreadable)
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch {
            throw TrainingError("\(path): not valid YAML or JSON (\(error))", kind: .corrupt)
        }
        guard let mapping = parsed as? [String: Any] else {
            throw TrainingError("\(path): expected a mapping of option names to values (e.g. 'epochs: 5')", kind: .corrupt)
        }
        return mapping
    }
}

/// An option group inside another (`@OptionGroup`), seen through reflection.
protocol NestedArguments { var nested: any ParsableArguments { get } }
/// A parsed option or flag, seen through reflection.
protocol ParsedValue { var value: Any { get } }

extension OptionGroup: NestedArguments { var nested: any ParsableArguments { wrappedValue } }
extension Option: ParsedValue { var value: Any { wrappedValue } }
extension Flag: ParsedValue { var value: Any { wrappedValue } }

extension TrainConfig {
    /// Keys that say how to read the options or how long this invocation may take, not what the run is: never
    /// saved, never read from a file.
    static let transientKeys: Set<String> = ["config", "resume", "time-limit"]

    /// Every option name a config file or options.json may hold.
    public static var keys: [String] {
        OptionMapping.fields(of: TrainConfig.defaults).map(\.key).filter { !transientKeys.contains($0) }
    }

    /// Every option at its default.
    public static var defaults: TrainConfig { parsedDefaults }

    /// The options as data (unset optionals left out), as stored in `options.json` and the runs table.
    public var mapping: [String: Any] { OptionMapping.mapping(of: self, excluding: Self.transientKeys) }

    /// The options as canonical JSON (sorted keys).
    public func json() throws -> String {
        let data = try JSONSerialization.data(withJSONObject: mapping, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads the options of one layer (a config file or a run's options.json) into arguments, checked on their own so
    /// an error names the file.
    static func arguments(fromFile path: String) throws -> [String] {
        let arguments = try OptionMapping.arguments(try OptionMapping.load(path), allowed: keys, source: path)
        do { _ = try TrainConfig.parse(arguments) } catch {
            throw TrainingError("\(path): \(TrainConfig.message(for: error))", kind: .badOption)
        }
        return arguments
    }

    /// The options of a run from its layers, later ones winning: defaults, the resumed run's `options.json` (with
    /// `--resume`), the `--config` file, then `commandLine` (the arguments as given, `--config` and `--resume`
    /// among them).
    /// - Throws: `TrainingError` naming the file or option at fault, or the argument parser's error for the command line.
    public static func resolve(commandLine: [String]) throws -> TrainConfig {
        let given = try TrainConfig.parse(commandLine)
        let fromFile = try given.output.config.map { try arguments(fromFile: $0) } ?? []
        var saved: [String] = []
        if given.output.resume {
            // The run to resume is the one the later layers name (the config file, then the command line).
            let out = try TrainConfig.parse(fromFile + commandLine).out
            guard !out.isEmpty else { throw TrainingError("invalid option: --resume needs --out RUNDIR", kind: .badOption) }
            let path = (out as NSString).appendingPathComponent("options.json")
            guard FileManager.default.fileExists(atPath: path) else {
                throw TrainingError("\(path): no saved options; is \(out) a run directory of gigapatch-train?", kind: .missingFile)
            }
            saved = try arguments(fromFile: path)
        }
        return try TrainConfig.parse(saved + fromFile + commandLine)
    }

    /// Checks what parsing cannot: the options a run needs, and every group's values (for a configuration built in
    /// code rather than parsed).
    public func validateForRun() throws {
        try check(!index.db.isEmpty, "--db is required (the patch index written by gigapatch-ingest)")
        try check(!output.out.isEmpty, "--out is required (the run directory)")
        try data.validate()
        try model.validate()
        try optimization.validate()
        try patchGD.validate()
        try curricula.validate()
        try compute.validate()
        try output.validate()
    }
}

extension ParsableArguments {
    /// Every option of the group at its default (the groups here give every option a default, and defaults are valid).
    public static var parsedDefaults: Self { try! parse([]) }
}
