import CZlib
import Foundation

/// An error reading the MNIST IDX files, naming the file and what to do.
public struct MNISTError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): MNIST: \(message)" }
}

/// One half of MNIST (training or test file pair): 28 x 28 gray digit images and their labels.
public struct MNISTSet: Sendable {
    /// Which pair of IDX files.
    public enum Part: String, Sendable {
        case train
        case test = "t10k"
    }

    /// Side of every digit image.
    public static let side = 28
    /// `count * 28 * 28` bytes, image after image, row-major, 0 = background.
    public let images: [UInt8]
    /// One label 0...9 per image.
    public let labels: [UInt8]

    public var count: Int { labels.count }

    public init(images: [UInt8], labels: [UInt8]) {
        precondition(images.count == labels.count * MNISTSet.side * MNISTSet.side)
        self.images = images
        self.labels = labels
    }

    /// Indices of the images of each digit, in file order.
    public func indicesByDigit() -> [[Int]] {
        var result = [[Int]](repeating: [], count: 10)
        for (i, label) in labels.enumerated() where label < 10 { result[Int(label)].append(i) }
        return result
    }

    /// Loads the images and labels of `part` from `directory`.
    ///
    /// Accepts both standard names (`train-images-idx3-ubyte`, `train-images.idx3-ubyte`), each gzip-compressed
    /// (`.gz`) or not. Throws `MNISTError` naming the file for a missing file, a wrong magic number, a truncated
    /// file or image and label counts that disagree.
    public static func load(directory: String, part: Part) throws(MNISTError) -> MNISTSet {
        let imagesPath = try find(directory: directory, stem: "\(part.rawValue)-images", kind: "idx3-ubyte")
        let labelsPath = try find(directory: directory, stem: "\(part.rawValue)-labels", kind: "idx1-ubyte")
        let imageData = try readAll(imagesPath)
        let labelData = try readAll(labelsPath)
        let imageHeader = try header(imageData, path: imagesPath, magic: 0x0000_0803, dimensions: 3)
        let labelHeader = try header(labelData, path: labelsPath, magic: 0x0000_0801, dimensions: 1)
        let (n, rows, cols) = (imageHeader[0], imageHeader[1], imageHeader[2])
        guard rows == side, cols == side else {
            throw MNISTError(path: imagesPath, message: "images are \(rows) x \(cols), expected 28 x 28")
        }
        guard labelHeader[0] == n else {
            throw MNISTError(path: labelsPath, message: "\(labelHeader[0]) labels but \(imagesPath) has \(n) images; the two files must come from the same MNIST part")
        }
        let imageBytes = n * side * side
        guard imageData.count >= 16 + imageBytes else {
            throw MNISTError(path: imagesPath, message: "truncated: header says \(n) images (\(16 + imageBytes) bytes), file has \(imageData.count); download it again")
        }
        guard labelData.count >= 8 + n else {
            throw MNISTError(path: labelsPath, message: "truncated: header says \(n) labels, file has \(labelData.count - 8); download it again")
        }
        let labels = Array(labelData[8 ..< 8 + n])
        if let bad = labels.firstIndex(where: { $0 > 9 }) {
            throw MNISTError(path: labelsPath, message: "label \(labels[bad]) at index \(bad) is not a digit 0...9")
        }
        return MNISTSet(images: Array(imageData[16 ..< 16 + imageBytes]), labels: labels)
    }

    private static func find(directory: String, stem: String, kind: String) throws(MNISTError) -> String {
        let names = ["\(stem)-\(kind)", "\(stem).\(kind)"].flatMap { [$0 + ".gz", $0] }
        for name in names {
            let path = "\(directory)/\(name)"
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        throw MNISTError(path: "\(directory)/\(names[1])",
                         message: "missing (looked for \(names.joined(separator: ", "))); see README.md for where to get MNIST")
    }

    /// Reads a whole file, decompressing gzip when it is gzip (zlib reads plain files unchanged).
    private static func readAll(_ path: String) throws(MNISTError) -> [UInt8] {
        guard let file = gzopen(path, "rb") else { throw MNISTError(path: path, message: "cannot open") }
        defer { gzclose(file) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw MNISTError(path: path, message: "corrupt gzip data; download it again") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0 ..< Int(n)])
        }
        return data
    }

    /// Checks the big-endian magic number and returns the dimension sizes.
    private static func header(_ data: [UInt8], path: String, magic: UInt32, dimensions: Int) throws(MNISTError) -> [Int] {
        func word(_ i: Int) -> UInt32 {
            UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3])
        }
        guard data.count >= 4 + 4 * dimensions else {
            throw MNISTError(path: path, message: "truncated: \(data.count) bytes is shorter than the IDX header")
        }
        guard word(0) == magic else {
            throw MNISTError(path: path, message: String(format: "wrong magic number 0x%08X, expected 0x%08X; is this an MNIST %@ file?",
                                                         word(0), magic, magic == 0x803 ? "images" : "labels"))
        }
        return (0 ..< dimensions).map { Int(word(4 + 4 * $0)) }
    }
}
