import Basics
import CJPEG
import CPNG
import Foundation

/// PNG through libpng's simplified API: 8-bit gray or RGB, with libpng's adaptive row filtering (the QC pictures
/// of a TCGA slide were 6.4 MB unfiltered).
public enum PNG {
    /// The PNG bytes of `raster`.
    /// - Throws: `ImageCodecError` with libpng's message (out of memory, bad size).
    public static func encode(_ raster: Raster) throws -> Data {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(raster.width)
        image.height = UInt32(raster.height)
        image.format = raster.channels == 3 ? UInt32(PNG_FORMAT_RGB) : UInt32(PNG_FORMAT_GRAY)
        // Room for the raw pixels plus headers is enough unless compression expands them; then ask for the size.
        var capacity = png_alloc_size_t(raster.pixels.count + raster.height + 1024)
        var out = [UInt8](repeating: 0, count: Int(capacity))
        var ok = raster.pixels.withUnsafeBufferPointer { src in
            png_image_write_to_memory(&image, &out, &capacity, 0, src.baseAddress, Int32(raster.width * raster.channels), nil)
        }
        if ok == 0, capacity > out.count {
            out = [UInt8](repeating: 0, count: Int(capacity))
            ok = raster.pixels.withUnsafeBufferPointer { src in
                png_image_write_to_memory(&image, &out, &capacity, 0, src.baseAddress, Int32(raster.width * raster.channels), nil)
            }
        }
        defer { png_image_free(&image) }
        guard ok != 0 else { throw ImageCodecError("PNG encoding failed: \(message(&image))") }
        return Data(out[0 ..< Int(capacity)])
    }

    /// Decodes PNG bytes to 8-bit RGB (gray, palette and 16-bit images are converted; alpha is dropped onto white).
    public static func decode(_ data: Data) throws -> Raster {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        let begun = data.withUnsafeBytes { png_image_begin_read_from_memory(&image, $0.baseAddress, $0.count) }
        guard begun != 0 else { throw ImageCodecError("not a readable PNG (\(message(&image)))") }
        defer { png_image_free(&image) }
        image.format = UInt32(PNG_FORMAT_RGB)
        var raster = Raster(width: Int(image.width), height: Int(image.height), channels: 3)
        var white = png_color(red: 255, green: 255, blue: 255)
        let finished = raster.pixels.withUnsafeMutableBufferPointer { png_image_finish_read(&image, &white, $0.baseAddress, Int32(3 * Int(image.width)), nil) }
        guard finished != 0 else { throw ImageCodecError("PNG decoding failed (\(message(&image)))") }
        return raster
    }

    /// Writes `raster` as a PNG file atomically (temporary name, then rename).
    public static func write(_ raster: Raster, to path: String) throws {
        try AtomicFile.write(try encode(raster), to: path)
    }

    static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}

/// JPEG through libjpeg-turbo: 8-bit RGB or gray.
public enum JPEG {
    /// The JPEG bytes of `raster` at `quality` (1-100), baseline or progressive (about 5% smaller), with optimised
    /// Huffman tables.
    public static func encode(_ raster: Raster, quality: Int = 85, progressive: Bool = false) throws -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: 200)
        let ok = raster.pixels.withUnsafeBufferPointer { src in
            gp_jpeg_encode(src.baseAddress, Int32(raster.width), Int32(raster.height), Int32(raster.channels), Int32(min(100, max(1, quality))),
                           progressive ? 1 : 0, &out, &size, &message)
        }
        defer { free(out) }
        guard ok != 0, let out else { throw ImageCodecError("JPEG encoding failed: \(text(message))") }
        return Data(bytes: out, count: Int(size))
    }

    /// Decodes JPEG bytes to 8-bit RGB.
    public static func decode(_ data: Data) throws -> Raster {
        var out: UnsafeMutablePointer<UInt8>?
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: 200)
        let ok = data.withUnsafeBytes { bytes in
            gp_jpeg_decode(bytes.bindMemory(to: UInt8.self).baseAddress, UInt(bytes.count), &out, &width, &height, &message)
        }
        defer { free(out) }
        guard ok != 0, let out else { throw ImageCodecError("not a readable JPEG (\(text(message)))") }
        return Raster(width: Int(width), height: Int(height), channels: 3, pixels: Array(UnsafeBufferPointer(start: out, count: Int(width * height) * 3)))
    }

    /// Writes `raster` as a JPEG file atomically.
    public static func write(_ raster: Raster, to path: String, quality: Int = 85, progressive: Bool = false) throws {
        try AtomicFile.write(try encode(raster, quality: quality, progressive: progressive), to: path)
    }
}

/// A C string in a `CChar` buffer.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Pictures on disk: PNG or JPEG by content (reading) or by extension (writing).
public enum ImageFile {
    /// Reads a PNG or JPEG file as RGB.
    /// - Throws: `ImageCodecError` naming the file: missing, unreadable, or neither PNG nor JPEG.
    public static func read(_ path: String) throws -> Raster {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ImageCodecError("\(path): no such file or not readable")
        }
        do {
            if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data) }
            if data.starts(with: [0xFF, 0xD8]) { return try JPEG.decode(data) }
        } catch let error as ImageCodecError { throw ImageCodecError("\(path): \(error.message)") }
        throw ImageCodecError("\(path): neither PNG nor JPEG; give a PNG or JPEG picture, or a slide with --slide")
    }

    /// Whether `path` names a picture this reads (by extension).
    public static func isPicture(_ path: String) -> Bool {
        ["png", "jpg", "jpeg"].contains((path as NSString).pathExtension.lowercased())
    }

    /// Writes `raster` as JPEG (.jpg, .jpeg) or PNG (anything else), atomically.
    public static func write(_ raster: Raster, to path: String, jpegQuality: Int = 85) throws {
        if ["jpg", "jpeg"].contains((path as NSString).pathExtension.lowercased()) {
            try JPEG.write(raster, to: path, quality: jpegQuality)
        } else {
            try PNG.write(raster, to: path)
        }
    }
}

/// An image that could not be encoded, decoded or read, with the library's message.
public struct ImageCodecError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
