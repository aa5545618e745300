import Basics
import CZlib
import Foundation

/// Encodes rasters as PNG (8-bit gray or RGB, zlib-compressed, no filtering).
public enum PNG {
    /// The PNG bytes of `raster`.
    public static func encode(_ raster: Raster) -> Data {
        var data = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var header = Data()
        header.append(bigEndian: UInt32(raster.width))
        header.append(bigEndian: UInt32(raster.height))
        header.append(contentsOf: [8, raster.channels == 3 ? 2 : 0, 0, 0, 0])
        chunk("IHDR", header, into: &data)
        // Each row starts with filter type 0.
        let rowBytes = raster.width * raster.channels
        var rows = [UInt8](repeating: 0, count: (rowBytes + 1) * raster.height)
        raster.pixels.withUnsafeBufferPointer { src in
            for y in 0 ..< raster.height {
                for i in 0 ..< rowBytes { rows[y * (rowBytes + 1) + 1 + i] = src[y * rowBytes + i] }
            }
        }
        var size = compressBound(uLong(rows.count))
        var compressed = [UInt8](repeating: 0, count: Int(size))
        _ = compress2(&compressed, &size, rows, uLong(rows.count), 6)
        chunk("IDAT", Data(compressed[0 ..< Int(size)]), into: &data)
        chunk("IEND", Data(), into: &data)
        return data
    }

    /// Writes `raster` as a PNG file atomically (temporary name, then rename).
    public static func write(_ raster: Raster, to path: String) throws {
        try AtomicFile.write(encode(raster), to: path)
    }

    private static func chunk(_ type: String, _ body: Data, into data: inout Data) {
        data.append(bigEndian: UInt32(body.count))
        let typed = Data(type.utf8) + body
        data.append(typed)
        let crc = typed.withUnsafeBytes { crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt(typed.count)) }
        data.append(bigEndian: UInt32(crc))
    }
}

extension Data {
    mutating func append(bigEndian value: UInt32) {
        append(contentsOf: [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)])
    }
}
