import Foundation

/// Damages tiles of a (classic, little-endian) tiled TIFF in place, the way a bad disk or a broken transfer does:
/// the file still opens and its other tiles and levels read, but decoding a damaged tile fails.
public enum CorruptTIFF {
    /// Overwrites the middle of each tile in `tiles` of the first image directory (level 0) with garbage.
    /// - Returns: how many tiles were damaged.
    @discardableResult
    public static func damageTiles(_ path: String, tiles: [Int]) throws -> Int {
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        func u16(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        guard data.count > 8, data[0] == 0x49, data[1] == 0x49, u16(2) == 42 else {
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSFilePathErrorKey: path, NSLocalizedDescriptionKey: "not a classic little-endian TIFF"])
        }
        let ifd = u32(4), entries = u16(ifd)
        var offsets: [Int] = [], counts: [Int] = []
        for e in 0 ..< entries {
            let entry = ifd + 2 + 12 * e, tag = u16(entry), type = u16(entry + 2), n = u32(entry + 4)
            guard tag == 324 || tag == 325 else { continue }
            let size = type == 3 ? 2 : 4
            let base = n * size <= 4 ? entry + 8 : u32(entry + 8)
            let values = (0 ..< n).map { size == 2 ? u16(base + 2 * $0) : u32(base + 4 * $0) }
            if tag == 324 { offsets = values } else { counts = values }
        }
        var damaged = 0
        for t in tiles where t < offsets.count && t < counts.count && counts[t] > 8 {
            let start = offsets[t] + counts[t] / 4, end = offsets[t] + counts[t] * 3 / 4
            for i in start ..< end { data[i] = UInt8(truncatingIfNeeded: i &* 131 &+ 7) }
            damaged += 1
        }
        try data.write(to: URL(fileURLWithPath: path))
        return damaged
    }
}
