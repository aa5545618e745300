import CTIFF
import Foundation

/// An error from libtiff, carrying its message and the file.
public struct TIFFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The TIFF file.
    public let path: String
    /// What we were doing, then libtiff's own message when it gave one.
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): TIFF error: \(message)" }
}

/// One open libtiff handle whose error messages are captured instead of printed.
final class TIFFFile {
    let path: String
    let tif: OpaquePointer
    private let messages: UnsafeMutablePointer<gp_tiff_messages>

    /// Opens `path` with a libtiff mode ("r", "w", "w8" for BigTIFF).
    init(path: String, mode: String) throws(TIFFError) {
        self.path = path
        messages = .allocate(capacity: 1)
        messages.initialize(to: gp_tiff_messages())
        guard let tif = gp_tiff_open(path, mode, messages) else {
            let error = TIFFError(path: path, message: "cannot open (mode \(mode))" + TIFFFile.suffix(messages))
            messages.deallocate()
            throw error
        }
        self.tif = tif
    }

    deinit {
        TIFFClose(tif)
        messages.deallocate()
    }

    /// An error for `what`, with libtiff's last message appended.
    func error(_ what: String) -> TIFFError {
        TIFFError(path: path, message: what + TIFFFile.suffix(messages))
    }

    private static func suffix(_ messages: UnsafeMutablePointer<gp_tiff_messages>) -> String {
        let text = withUnsafeBytes(of: messages.pointee.error) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "" : ": \(text)"
    }

    func set(_ tag: Int32, u16 value: Int) throws(TIFFError) {
        guard gp_tiff_set_u16(tif, UInt32(tag), UInt16(value)) == 1 else { throw error("cannot set tag \(tag)") }
    }

    func set(_ tag: Int32, u32 value: Int) throws(TIFFError) {
        guard gp_tiff_set_u32(tif, UInt32(tag), UInt32(value)) == 1 else { throw error("cannot set tag \(tag)") }
    }

    func set(_ tag: Int32, double value: Double) throws(TIFFError) {
        guard gp_tiff_set_double(tif, UInt32(tag), value) == 1 else { throw error("cannot set tag \(tag)") }
    }

    func set(_ tag: Int32, string value: String) throws(TIFFError) {
        guard gp_tiff_set_string(tif, UInt32(tag), value) == 1 else { throw error("cannot set tag \(tag)") }
    }

    func u32(_ tag: Int32) -> Int? {
        var value: UInt32 = 0
        return gp_tiff_get_u32(tif, UInt32(tag), &value) == 1 ? Int(value) : nil
    }

    func u16(_ tag: Int32) -> Int {
        var value: UInt16 = 0
        _ = gp_tiff_get_u16_defaulted(tif, UInt32(tag), &value)
        return Int(value)
    }
}

/// What one TIFF directory (image) holds: size, tiling, samples and compression.
public struct TIFFDirectoryInfo: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Tile size, nil for a stripped image.
    public let tileWidth: Int?
    public let tileHeight: Int?
    public let samplesPerPixel: Int
    /// TIFF compression code (1 none, 7 JPEG, 8 deflate, ...).
    public let compression: Int
    /// TIFF photometric code (1 gray, 2 RGB, 6 YCbCr, ...).
    public let photometric: Int

    /// Lists every directory of the TIFF at `path`, in file order.
    public static func read(path: String) throws(TIFFError) -> [TIFFDirectoryInfo] {
        let file = try TIFFFile(path: path, mode: "r")
        var infos: [TIFFDirectoryInfo] = []
        repeat {
            infos.append(TIFFDirectoryInfo(
                width: file.u32(TIFFTAG_IMAGEWIDTH) ?? 0, height: file.u32(TIFFTAG_IMAGELENGTH) ?? 0,
                tileWidth: file.u32(TIFFTAG_TILEWIDTH), tileHeight: file.u32(TIFFTAG_TILELENGTH),
                samplesPerPixel: file.u16(TIFFTAG_SAMPLESPERPIXEL), compression: file.u16(TIFFTAG_COMPRESSION),
                photometric: file.u16(TIFFTAG_PHOTOMETRIC)))
        } while TIFFReadDirectory(file.tif) == 1
        return infos
    }
}
