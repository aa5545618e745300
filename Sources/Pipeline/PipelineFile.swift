import Basics
import Foundation
import Yams

/// An error in a pipeline file or run: what, where, and what to do.
public struct PipelineError: Error, Sendable, CustomStringConvertible, KindedError {
    public let message: String
    public let kind: ErrorKind
    public init(_ message: String, kind: ErrorKind = .other) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}

/// The stages a pipeline can run, each a `gigapatch-<stage>` executable, and which of its options name files it reads
/// from outside the pipeline and files or folders it produces.
public struct StageKind: Sendable, Equatable {
    public var name: String
    public var executable: String
    /// Arguments before the stage's options: the subcommand of executables that have several (`gigapatch-stain fit`).
    public var subcommand: [String]
    /// Options naming files or folders read (hashed into the stage's fingerprint).
    public var inputs: [String]
    /// Options naming files or folders written (checked unchanged before skipping).
    public var outputs: [String]
    /// Outputs whose contents later stages change (the patch index): only their existence is checked.
    public var sharedOutputs: [String]
    /// How a stage retried after a failure (same fingerprint) continues: `flag` is added when `marker` exists under
    /// the folder named by `option` (train: `--resume` when `out/checkpoints/last.safetensors` is there). Stages
    /// without one resume by themselves (ingest and ultramnist skip finished work).
    public var resume: Resume?
    /// What a stage redone from scratch removes first: the path named by each option, with each suffix
    /// (ingest: the patch index and its -wal and -shm files; train: the run folder).
    public var cleanOnRedo: [Clean]
    /// Runs as the ranks of an MPI job when the pipeline or the stage names a `launcher` (ingest, train, predict).
    public var runsUnderLauncher = false
    /// Options that bound one invocation and do not change what it makes (train's `time-limit`): left out of the
    /// fingerprint, so changing them neither redoes the stage nor removes its work.
    public var invocationOptions: [String] = []

    public struct Resume: Sendable, Equatable {
        public var option: String
        public var marker: String
        public var flag: String
    }

    public struct Clean: Sendable, Equatable {
        public var option: String
        public var suffixes: [String]
    }

    public init(name: String, executable: String, subcommand: [String] = [], inputs: [String], outputs: [String], sharedOutputs: [String],
                resume: Resume? = nil, cleanOnRedo: [Clean] = []) {
        self.name = name
        self.executable = executable
        self.subcommand = subcommand
        self.inputs = inputs
        self.outputs = outputs
        self.sharedOutputs = sharedOutputs
        self.resume = resume
        self.cleanOnRedo = cleanOnRedo
    }

    public static let all: [StageKind] = [
        StageKind(name: "ultramnist", executable: "gigapatch-ultramnist", inputs: ["mnist"], outputs: ["out"], sharedOutputs: []),
        StageKind(name: "ingest", executable: "gigapatch-ingest", inputs: ["slides", "manifest", "preset"],
                  outputs: ["qc-dir", "summary"], sharedOutputs: ["db"], cleanOnRedo: [Clean(option: "db", suffixes: ["", "-wal", "-shm"])]).parallel(),
        StageKind(name: "split", executable: "gigapatch-split", inputs: ["manifest"], outputs: ["out"], sharedOutputs: ["db"]),
        StageKind(name: "train", executable: "gigapatch-train", inputs: ["init", "config"], outputs: ["out"], sharedOutputs: ["db"],
                  resume: Resume(option: "out", marker: "checkpoints/last.safetensors", flag: "--resume"),
                  cleanOnRedo: [Clean(option: "out", suffixes: [""])]).parallel().invocation(["time-limit"]),
        StageKind(name: "predict", executable: "gigapatch-predict", inputs: ["checkpoint"], outputs: ["out"], sharedOutputs: ["db"]).parallel(),
        StageKind(name: "stain", executable: "gigapatch-stain", subcommand: ["fit"], inputs: ["slide"], outputs: ["out"], sharedOutputs: []),
        StageKind(name: "compare", executable: "gigapatch", subcommand: ["compare"], inputs: [], outputs: ["out"], sharedOutputs: []),
    ]

    func parallel() -> StageKind {
        var kind = self
        kind.runsUnderLauncher = true
        return kind
    }

    func invocation(_ options: [String]) -> StageKind {
        var kind = self
        kind.invocationOptions = options
        return kind
    }

    /// Exit status of a stage that stopped at its time limit with its work committed (gigapatch-train's
    /// `--time-limit`); the next run of the pipeline continues it.
    public static let timeLimitStatus: Int32 = 75

    public static func named(_ name: String) -> StageKind? { all.first { $0.name == name } }
}

/// One stage of a pipeline file: a name, the stage it runs and its options (those of the stage executable).
public struct PipelineStage: Sendable, Equatable {
    public var name: String
    public var kind: StageKind
    /// Options in file order; values are strings, numbers, booleans (flags) or lists (repeated options).
    public var options: [(key: String, value: OptionValue)]
    /// The command the stage runs under, as words (`mpirun -np 4 --hostfile hosts`); empty: none.
    public var launcher: [String] = []

    public static func == (a: PipelineStage, b: PipelineStage) -> Bool {
        a.name == b.name && a.kind == b.kind && a.options.map(\.key) == b.options.map(\.key) && a.options.map(\.value) == b.options.map(\.value)
            && a.launcher == b.launcher
    }

    /// The value of an option as text (after substitution), nil when absent or a flag.
    public func text(_ key: String) -> String? {
        guard let value = options.first(where: { $0.key == key })?.value, case .text(let s) = value else { return nil }
        return s
    }

    /// The command-line arguments: `--key value`, `--key` for true, nothing for false, repeated for lists.
    public var arguments: [String] { arguments(of: options) }

    /// The arguments that decide what the stage makes (all but its kind's invocation options): the fingerprint's.
    public var fingerprintArguments: [String] { arguments(of: options.filter { !kind.invocationOptions.contains($0.key) }) }

    func arguments(of options: [(key: String, value: OptionValue)]) -> [String] {
        options.flatMap { key, value -> [String] in
            switch value {
            case .text(let s): return ["--\(key)", s]
            case .flag(let on): return on ? ["--\(key)"] : []
            case .list(let items): return items.flatMap { ["--\(key)", $0] }
            }
        }
    }
}

/// An option value in a pipeline file.
public enum OptionValue: Sendable, Equatable, Codable {
    case text(String)
    case flag(Bool)
    case list([String])
}

/// A pipeline: variables and stages, read from YAML.
///
/// ```yaml
/// name: ultramnist-demo
/// run_dir: out/${name}          # where run.json and state.json go (default out/<name>)
/// variables:
///   mnist: ../shared/data/mnist
///   work: out/demo
/// stages:
///   - name: generate            # unique; default: the stage
///     stage: ultramnist          # ultramnist | ingest | split | train | predict
///     options:                   # exactly the options of gigapatch-ultramnist, without dashes
///       mnist: ${mnist}
///       out: ${work}/data
/// ```
/// `${var}` is replaced in every option value; `gigapatch run --set var=value` overrides a variable.
/// `launcher: "mpirun -np 4 --hostfile hosts"` at the top runs the ingest, train and predict stages under it (as the
/// ranks of an MPI job); a stage's own `launcher:` overrides it for that stage, and `launcher: ""` runs it alone.
public struct PipelineFile: Sendable {
    public var path: String
    public var name: String
    public var runDirectory: String
    public var variables: [String: String]
    public var stages: [PipelineStage]

    /// Reads and resolves a pipeline file.
    /// - Parameter overrides: `--set` values; each must name a variable of the file.
    /// - Throws: `PipelineError` naming the file and the offending key, stage or variable.
    public static func load(_ path: String, overrides: [String: String] = [:]) throws -> PipelineFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw PipelineError("\(path): cannot read the pipeline file; check the path")
        }
        let parsed: Any?
        do { parsed = try Yams.load(yaml: text) } catch { throw PipelineError("\(path): not valid YAML (\(error))") }
        guard let root = parsed as? [String: Any] else { throw PipelineError("\(path): expected a mapping with 'stages'") }
        let unknownTop = Set(root.keys).subtracting(["name", "run_dir", "variables", "stages", "description", "launcher"])
        guard unknownTop.isEmpty else {
            throw PipelineError("\(path): unknown key(s) \(unknownTop.sorted().joined(separator: ", ")); allowed: name, description, run_dir, variables, launcher, stages")
        }
        let name = (root["name"] as? String) ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var variables: [String: String] = [:]
        if let raw = root["variables"] {
            guard let mapping = raw as? [String: Any] else { throw PipelineError("\(path): 'variables' must be a mapping of names to values") }
            for (k, v) in mapping { variables[k] = scalar(v) }
        }
        for (k, v) in overrides {
            guard variables[k] != nil else {
                throw PipelineError("\(path): --set \(k): no such variable; the file defines \(variables.keys.sorted().joined(separator: ", "))")
            }
            variables[k] = v
        }
        variables["name"] = variables["name"] ?? name
        variables = try resolve(variables, path: path)
        guard let rawStages = root["stages"] as? [Any], !rawStages.isEmpty else {
            throw PipelineError("\(path): 'stages' must be a non-empty list")
        }
        var stages: [PipelineStage] = []
        for (i, raw) in rawStages.enumerated() {
            guard let s = raw as? [String: Any], let kindName = s["stage"] as? String else {
                throw PipelineError("\(path): stage \(i + 1) needs 'stage: ultramnist|ingest|split|train|predict'")
            }
            guard let kind = StageKind.named(kindName) else {
                throw PipelineError("\(path): stage \(i + 1): unknown stage '\(kindName)'; use \(StageKind.all.map(\.name).joined(separator: ", "))")
            }
            let stageName = (s["name"] as? String) ?? kindName
            guard !stages.contains(where: { $0.name == stageName }) else {
                throw PipelineError("\(path): two stages are named '\(stageName)'; give each a distinct 'name'")
            }
            var options: [(String, OptionValue)] = []
            if let raw = s["options"] {
                guard let mapping = raw as? [String: Any] else { throw PipelineError("\(path): stage \(stageName): 'options' must be a mapping") }
                for key in mapping.keys.sorted() {
                    let context = "\(path): stage \(stageName), option \(key)"
                    switch mapping[key]! {
                    case let b as Bool: options.append((key, .flag(b)))
                    case let list as [Any]: options.append((key, .list(try list.map { try substitute(scalar($0), variables, context: context) })))
                    case let v: options.append((key, .text(try substitute(scalar(v), variables, context: context))))
                    }
                }
            }
            var stage = PipelineStage(name: stageName, kind: kind, options: options)
            let unknown = Set(s.keys).subtracting(["name", "stage", "options", "launcher"])
            guard unknown.isEmpty else {
                throw PipelineError("\(path): stage \(stageName): unknown key(s) \(unknown.sorted().joined(separator: ", ")); allowed: name, stage, options, launcher")
            }
            if let own = s["launcher"] {
                let words = try Self.words(try substitute(scalar(own), variables, context: "\(path): stage \(stageName), launcher"))
                guard words.isEmpty || kind.runsUnderLauncher else {
                    throw PipelineError("\(path): stage \(stageName): the \(kind.name) stage does not run under a launcher (ingest, train and predict do); remove its 'launcher'")
                }
                stage.launcher = words
            } else if let shared = root["launcher"], kind.runsUnderLauncher {
                stage.launcher = try Self.words(try substitute(scalar(shared), variables, context: "\(path): launcher"))
            }
            stages.append(stage)
        }
        let runDirectory = try substitute((root["run_dir"] as? String) ?? "out/${name}", variables, context: "\(path): run_dir")
        return PipelineFile(path: path, name: name, runDirectory: runDirectory, variables: variables, stages: stages)
    }

    /// A command line split into words as a shell would for plain words and single or double quotes (no expansions).
    static func words(_ line: String) throws -> [String] {
        var words: [String] = [], current = "", quote: Character?, inWord = false
        for c in line {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c
                inWord = true
            } else if c == " " || c == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(c)
                inWord = true
            }
        }
        if quote != nil { throw PipelineError("launcher \(line): unclosed quote") }
        if inWord { words.append(current) }
        return words
    }

    static func scalar(_ v: Any) -> String {
        switch v {
        case let s as String: return s
        case let d as Double where d == d.rounded() && abs(d) < 1e15: return String(Int(d))
        default: return "\(v)"
        }
    }

    /// The longest value a variable may expand to: nested references can double a value at every level.
    static let maximumExpansion = 65_536

    /// Variables that refer to each other (work: out/${name}) resolved depth first, each once: a cycle is an error
    /// naming it (a -> b -> a), and so is a value that expands past `maximumExpansion` characters.
    static func resolve(_ raw: [String: String], path: String) throws -> [String: String] {
        var done: [String: String] = [:]
        func value(_ name: String, _ chain: [String]) throws -> String {
            if let known = done[name] { return known }
            if chain.contains(name) {
                throw PipelineError("\(path): variables refer to each other in a cycle: \((chain.drop { $0 != name } + [name]).joined(separator: " -> ")); make one of them a plain value")
            }
            guard let text = raw[name] else { return "" }
            var references: [String: String] = [:]
            for reference in Self.references(in: text) where raw[reference] != nil {
                references[reference] = try value(reference, chain + [name])
            }
            let result = try substitute(text, raw.merging(references) { $1 }, context: "\(path): variable \(name)")
            guard result.count <= maximumExpansion else {
                throw PipelineError("\(path): variable \(name) expands to more than \(maximumExpansion) characters; check its ${...} references")
            }
            done[name] = result
            return result
        }
        for name in raw.keys.sorted() { _ = try value(name, []) }
        return done
    }

    /// The names referred to as `${name}` in `text`.
    static func references(in text: String) -> [String] {
        var names: [String] = [], rest = Substring(text)
        while let open = rest.range(of: "${"), let close = rest[open.upperBound...].firstIndex(of: "}") {
            names.append(String(rest[open.upperBound ..< close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Replaces every `${var}`; an unknown variable is an error naming it.
    static func substitute(_ text: String, _ variables: [String: String], context: String) throws -> String {
        var out = "", rest = Substring(text)
        while let open = rest.range(of: "${") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].firstIndex(of: "}") else {
                throw PipelineError("\(context): unclosed ${ in '\(text)'")
            }
            let name = String(rest[open.upperBound ..< close])
            guard let value = variables[name] else {
                throw PipelineError("\(context): unknown variable ${\(name)}; define it under 'variables' (defined: \(variables.keys.sorted().joined(separator: ", ")))")
            }
            out += value
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }
}
