import Foundation

/// What makes two tilings the same: their parameters with every parameter at its default left out, as canonical
/// JSON, hashed. A parameter added later with a default therefore changes no existing tiling's identity (nor the
/// match of a checkpoint trained on it), while any parameter set away from its default does.
///
/// The defaults are those of the code that wrote the parameters (ingest's settings at their defaults), stored with the
/// tiling so that a checkpoint's recorded parameters can be normalised the same way later.
public enum TilingIdentity {
    /// The identity of `params` (JSON object) under `defaults` (JSON object): `t1-` and 16 hex digits (FNV-1a 64).
    public static func of(params: String, defaults: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in normalised(params: params, defaults: defaults).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "t1-" + String(format: "%016llx", hash)
    }

    /// `params` without the values equal to `defaults` (recursively in objects). A parameter the JSON lacks counts as at
    /// its default: that is what a tiling written before the parameter existed means. Canonical: sorted keys, no spaces.
    public static func normalised(params: String, defaults: String) -> String {
        let p = object(params), d = object(defaults)
        let reduced = reduce(p, defaults: d)
        guard let data = try? JSONSerialization.data(withJSONObject: reduced, options: [.sortedKeys]) else { return params }
        return String(decoding: data, as: UTF8.self)
    }

    static func object(_ json: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
    }

    static func reduce(_ params: [String: Any], defaults: [String: Any]) -> [String: Any] {
        var result: [String: Any] = [:]
        for (key, value) in params {
            guard let fallback = defaults[key] else { result[key] = value; continue }
            if let inner = value as? [String: Any], let innerDefaults = fallback as? [String: Any] {
                let r = reduce(inner, defaults: innerDefaults)
                if !r.isEmpty { result[key] = r }
            } else if !NSDictionary(dictionary: ["v": value]).isEqual(to: ["v": fallback]) {
                result[key] = value
            }
        }
        return result
    }
}
