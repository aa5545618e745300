import CZlib
import Foundation

/// Writes small MNIST-format IDX files for tests, so nothing depends on the real MNIST being present.
///
/// Image `i` shows digit `i % 10`: a filled square of value `100 + 15 * digit` covering rows/columns 6...21,
/// with its index encoded in the first row so images differ.
public enum FakeMNIST {
    /// Writes `train` training and `test` test images into `directory` (gzip when `gzip`, with the dashed or dotted names).
    public static func write(to directory: String, train: Int = 200, test: Int = 100, gzip: Bool = true, dottedNames: Bool = false) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (part, n) in [("train", train), ("t10k", test)] {
            let (images, labels) = idx(count: n)
            let suffix = gzip ? ".gz" : ""
            let sep = dottedNames ? "." : "-"
            try write(images, to: "\(directory)/\(part)-images\(sep)idx3-ubyte\(suffix)", gzip: gzip)
            try write(labels, to: "\(directory)/\(part)-labels\(sep)idx1-ubyte\(suffix)", gzip: gzip)
        }
    }

    /// The IDX bytes of `count` fake images and their labels.
    public static func idx(count: Int) -> (images: [UInt8], labels: [UInt8]) {
        var images = bigEndian([0x0000_0803, UInt32(count), 28, 28])
        var labels = bigEndian([0x0000_0801, UInt32(count)])
        for i in 0 ..< count {
            let digit = i % 10
            var image = [UInt8](repeating: 0, count: 28 * 28)
            for y in 6 ... 21 { for x in 6 ... 21 { image[y * 28 + x] = UInt8(100 + 15 * digit) } }
            image[0] = UInt8(i & 0xFF)
            image[1] = UInt8((i >> 8) & 0xFF)
            images += image
            labels.append(UInt8(digit))
        }
        return (images, labels)
    }

    public static func bigEndian(_ words: [UInt32]) -> [UInt8] {
        words.flatMap { w in [UInt8(w >> 24), UInt8((w >> 16) & 0xFF), UInt8((w >> 8) & 0xFF), UInt8(w & 0xFF)] }
    }

    /// Writes bytes, gzip-compressed when asked.
    public static func write(_ bytes: [UInt8], to path: String, gzip: Bool) throws {
        if !gzip {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return
        }
        guard let file = gzopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
        _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
    }
}
