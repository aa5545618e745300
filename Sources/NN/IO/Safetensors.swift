import Basics
import Foundation

/// An error reading or writing weights, naming the file and the tensors at fault.
public struct WeightsError: Error, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public var description: String { "\(path): weights: \(message)" }
}

/// The safetensors format: 8-byte little-endian header length, a JSON header
/// (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then raw little-endian data.
public enum Safetensors {
    /// One tensor of a file: dtype name, shape and raw bytes.
    public struct Entry: Sendable, Equatable {
        public var dtype: String
        public var shape: [Int]
        public var data: Data

        public init(dtype: String, shape: [Int], data: Data) {
            self.dtype = dtype
            self.shape = shape
            self.data = data
        }
    }

    /// Writes `tensors` (in the given order) and `metadata` to `path` atomically (temporary name, then rename).
    public static func write(_ tensors: [(String, Entry)], metadata: [String: String], to path: String) throws {
        var header: [String: Any] = [:]
        var offset = 0
        for (name, entry) in tensors {
            header[name] = ["dtype": entry.dtype, "shape": entry.shape, "data_offsets": [offset, offset + entry.data.count]]
            offset += entry.data.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }   // pad with spaces so the data is 8-byte aligned
        var file = Data()
        var length = UInt64(json.count).littleEndian
        file.append(Data(bytes: &length, count: 8))
        file.append(json)
        for (_, entry) in tensors { file.append(entry.data) }
        do { try AtomicFile.write(file, to: path) } catch { throw WeightsError(path: path, message: "cannot write (\(error))") }
    }

    /// Reads every tensor and the metadata of `path`.
    public static func read(_ path: String) throws(WeightsError) -> (tensors: [String: Entry], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw WeightsError(path: path, message: "no such file") }
        guard data.count >= 8 else { throw WeightsError(path: path, message: "too short to be a safetensors file") }
        let length = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard length <= UInt64(data.count - 8) else { throw WeightsError(path: path, message: "header length \(length) exceeds the file; truncated?") }
        let headerData = data.subdata(in: 8 ..< 8 + Int(length))
        guard let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any] else {
            throw WeightsError(path: path, message: "the header is not a JSON object; not a safetensors file?")
        }
        let base = 8 + Int(length)
        var tensors: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                metadata = (value as? [String: String]) ?? [:]
                continue
            }
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String, let shape = info["shape"] as? [Int],
                  let offsets = info["data_offsets"] as? [Int], offsets.count == 2, offsets[0] <= offsets[1], base + offsets[1] <= data.count else {
                throw WeightsError(path: path, message: "tensor \(name) has a malformed header entry or lies beyond the file")
            }
            tensors[name] = Entry(dtype: dtype, shape: shape, data: data.subdata(in: base + offsets[0] ..< base + offsets[1]))
        }
        return (tensors, metadata)
    }

    static func floats(_ p: UnsafeMutablePointer<Float>, _ n: Int) -> Data {
        Data(bytes: p, count: n * 4)   // little-endian on every platform Gigapatch runs on
    }
}

extension Model {
    /// Parameters, buffers and counters as safetensors entries under their PyTorch state_dict names, each prefixed.
    public func tensors(prefix: String = "") -> [(String, Safetensors.Entry)] {
        store.entries.map { e in
            switch e.kind {
            case .parameter: return (prefix + e.name, .init(dtype: "F32", shape: e.shape, data: Safetensors.floats(store.value(e.offset), e.count)))
            case .buffer: return (prefix + e.name, .init(dtype: "F32", shape: e.shape, data: Safetensors.floats(store.buffer(e.offset), e.count)))
            case .counter:
                var v = store.counters[e.offset].littleEndian
                return (prefix + e.name, .init(dtype: "I64", shape: e.shape, data: Data(bytes: &v, count: 8)))
            }
        }
    }

    /// Saves parameters, buffers and counters under their PyTorch state_dict names, with `metadata` (architecture is added).
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["architecture"] = meta["architecture"] ?? architecture
        meta["format"] = "pt"
        try Safetensors.write(tensors(), metadata: meta, to: path)
    }

    /// Loads weights saved by Gigapatch or by PyTorch (`safetensors.torch.save_file(model.state_dict())`).
    ///
    /// - Parameter skipping: name prefixes left as initialised and allowed to be absent or different in the file
    ///   (e.g. `["fc."]` to take an ImageNet backbone and keep a new projection).
    /// - Throws: `WeightsError` listing every missing, unexpected or wrongly shaped tensor (nothing is changed then).
    /// - Returns: the file's metadata.
    @discardableResult
    public func load(from path: String, skipping: [String] = []) throws -> [String: String] {
        let (tensors, metadata) = try Safetensors.read(path)
        try load(tensors, path: path, skipping: skipping)
        return metadata
    }

    /// Loads the tensors named `prefix + name` (other names are ignored when a prefix is given: one file may hold several models).
    ///
    /// - Throws: `WeightsError` for `path` listing every missing, unexpected or wrongly shaped tensor (nothing is changed then).
    public func load(_ all: [String: Safetensors.Entry], prefix: String = "", path: String, skipping: [String] = []) throws {
        var tensors: [String: Safetensors.Entry] = [:]
        for (name, entry) in all where name.hasPrefix(prefix) { tensors[String(name.dropFirst(prefix.count))] = entry }
        let skip = { (name: String) in skipping.contains { name.hasPrefix($0) } }
        var problems: [String] = []
        let missing = store.entries.filter { !skip($0.name) && tensors[$0.name] == nil }.map { prefix + $0.name }
        let extra = tensors.keys.filter { !skip($0) && store.entry($0) == nil }.sorted().map { prefix + $0 }
        if !missing.isEmpty { problems.append("missing \(missing.joined(separator: ", "))") }
        if !extra.isEmpty { problems.append("unexpected \(extra.joined(separator: ", "))") }
        for e in store.entries where !skip(e.name) {
            guard let t = tensors[e.name] else { continue }
            let expectedType = e.kind == .counter ? "I64" : "F32"
            if t.shape != e.shape { problems.append("\(prefix + e.name) has shape \(t.shape), expected \(e.shape)") }
            else if t.dtype != expectedType { problems.append("\(prefix + e.name) is \(t.dtype), expected \(expectedType)") }
        }
        guard problems.isEmpty else {
            throw WeightsError(path: path, message: "does not fit \(architecture): " + problems.joined(separator: "; "))
        }
        for e in store.entries where !skip(e.name) {
            let t = tensors[e.name]!
            t.data.withUnsafeBytes { raw in
                switch e.kind {
                case .parameter: store.value(e.offset).update(from: raw.bindMemory(to: Float.self).baseAddress!, count: e.count)
                case .buffer: store.buffer(e.offset).update(from: raw.bindMemory(to: Float.self).baseAddress!, count: e.count)
                case .counter: store.counters[e.offset] = Int64(littleEndian: raw.loadUnaligned(as: Int64.self))
                }
            }
        }
    }
}

extension Optimizer {
    /// Moments as safetensors entries (`prefix + "moment1"`, `prefix + "moment2"`); the step count goes in metadata.
    public func tensors(prefix: String = "") -> [(String, Safetensors.Entry)] {
        let n = store.parameterCount
        return [(prefix + "moment1", .init(dtype: "F32", shape: [n], data: Safetensors.floats(moment1.baseAddress!, n))),
                (prefix + "moment2", .init(dtype: "F32", shape: [n], data: Safetensors.floats(moment2.baseAddress!, n)))]
    }

    /// Saves moments and the step count beside a checkpoint, so training resumes exactly.
    public func save(to path: String) throws {
        try Safetensors.write(tensors(), metadata: ["optimizer": kind.name, "step": String(stepCount)], to: path)
    }

    /// Restores moments and the step count saved by `save(to:)`.
    public func load(from path: String) throws {
        let (tensors, metadata) = try Safetensors.read(path)
        guard metadata["optimizer"] == kind.name, let step = metadata["step"].flatMap(Int.init) else {
            throw WeightsError(path: path, message: "optimizer state for \(metadata["optimizer"] ?? "?"); expected \(kind.name)")
        }
        try load(tensors, path: path, step: step)
    }

    /// Restores moments named `prefix + "moment1/2"` and sets the step count.
    public func load(_ tensors: [String: Safetensors.Entry], prefix: String = "", path: String, step: Int) throws {
        let n = store.parameterCount
        guard let m1 = tensors[prefix + "moment1"], let m2 = tensors[prefix + "moment2"], m1.shape == [n], m2.shape == [n] else {
            throw WeightsError(path: path, message: "optimizer state \(prefix)moment1 has \(tensors[prefix + "moment1"]?.shape ?? []) values; expected [\(n)]")
        }
        m1.data.withUnsafeBytes { moment1.baseAddress!.update(from: $0.bindMemory(to: Float.self).baseAddress!, count: n) }
        m2.data.withUnsafeBytes { moment2.baseAddress!.update(from: $0.bindMemory(to: Float.self).baseAddress!, count: n) }
        stepCount = step
    }
}
