import COpenSlide
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A whole-slide image opened through OpenSlide: metadata, region reads and thumbnails.
///
/// Reads may run on many threads at once (OpenSlide is thread-safe except `openslide_close`).
/// An OpenSlide error is terminal for its C handle: the read that hit it throws a `SlideError`,
/// the broken handle is closed once no other read uses it, and the next read opens a fresh one.
public final class Slide: @unchecked Sendable {
    /// The file this slide was opened from.
    public let path: String
    /// OpenSlide's vendor name (`aperio`, `hamamatsu`, `generic-tiff`, ...), nil when it reports none.
    public let vendor: String?
    /// Pyramid levels, finest first.
    public let levels: [SlideLevel]
    /// Every property OpenSlide reports, by name.
    public let properties: [String: String]
    /// Associated images (label, macro, thumbnail) with their sizes.
    public let associatedImages: [AssociatedImage]
    /// Microns per level-0 pixel and where that value came from.
    public let mpp: MicronsPerPixel
    /// Scanning objective magnification (`openslide.objective-power`), nil when unknown.
    public let objectivePower: Double?
    /// The non-empty region some vendors record, nil when absent.
    public let bounds: SlideBounds?

    /// Version of the OpenSlide library in use.
    public static var openSlideVersion: String { String(cString: openslide_get_version()) }

    /// The guarded C handle; nil after an error until the next read reopens it.
    private var handle: OpaquePointer?
    private let lock = ReadWriteLock()

    /// Opens the slide at `path`, reading all metadata.
    /// - Throws: `SlideError` naming the file: missing, unsupported format, or OpenSlide's message.
    public init(path: String) throws(SlideError) {
        self.path = path
        let osr = try Slide.openHandle(path: path)
        handle = osr
        let count = Int(openslide_get_level_count(osr))
        var levels: [SlideLevel] = []
        for level in 0 ..< count {
            var w: Int64 = 0, h: Int64 = 0
            openslide_get_level_dimensions(osr, Int32(level), &w, &h)
            levels.append(SlideLevel(width: Int(w), height: Int(h), downsample: openslide_get_level_downsample(osr, Int32(level))))
        }
        var properties: [String: String] = [:]
        if let names = openslide_get_property_names(osr) {
            var i = 0
            while let name = names[i] {
                if let value = openslide_get_property_value(osr, name) { properties[String(cString: name)] = String(cString: value) }
                i += 1
            }
        }
        var associated: [AssociatedImage] = []
        if let names = openslide_get_associated_image_names(osr) {
            var i = 0
            while let name = names[i] {
                var w: Int64 = 0, h: Int64 = 0
                openslide_get_associated_image_dimensions(osr, name, &w, &h)
                associated.append(AssociatedImage(name: String(cString: name), width: Int(w), height: Int(h)))
                i += 1
            }
        }
        if let message = openslide_get_error(osr) {
            let text = String(cString: message)
            openslide_close(osr)
            handle = nil
            throw SlideError(kind: .openslide, path: path, message: text)
        }
        self.levels = levels
        self.properties = properties
        self.associatedImages = associated
        self.vendor = properties["openslide.vendor"]
        self.mpp = MicronsPerPixel.from(properties: properties)
        self.objectivePower = properties["openslide.objective-power"].flatMap { Double($0) }
        self.bounds = SlideBounds.from(properties: properties)
    }

    deinit {
        if let handle { openslide_close(handle) }
    }

    /// The vendor OpenSlide would use for `path`, or nil when it does not recognise the file (no full open).
    public static func detectVendor(path: String) -> String? {
        openslide_detect_vendor(path).map { String(cString: $0) }
    }

    /// Level-0 width and height.
    public var dimensions: (width: Int, height: Int) { (levels[0].width, levels[0].height) }

    /// The level OpenSlide considers best for reading at `downsample` (the finest level not finer than needed).
    public func bestLevel(forDownsample downsample: Double) -> Int {
        var best = 0
        for (i, level) in levels.enumerated() where level.downsample <= downsample * 1.0001 { best = i }
        return best
    }

    /// Reads a region as 8-bit RGB: level-0 origin, level, size at that level.
    ///
    /// Transparent pixels (outside the scanned area, past the edge) come back white.
    /// - Throws: `SlideError` for a level out of range, a bad size, or an OpenSlide failure (the handle is then reopened on the next read).
    public func readRegion(_ region: SlideRegion) throws(SlideError) -> Raster {
        var raster = Raster(width: max(0, region.width), height: max(0, region.height), channels: 3)
        try raster.pixels.withUnsafeMutableBufferPointer { (rgb) throws(SlideError) in
            try readRegion(region, into: rgb)
        }
        return raster
    }

    /// Reads a region into a caller's RGB buffer of `3 * width * height` bytes (no allocation beyond one ARGB scratch).
    public func readRegion(_ region: SlideRegion, into rgb: UnsafeMutableBufferPointer<UInt8>) throws(SlideError) {
        guard levels.indices.contains(region.level) else {
            throw SlideError(kind: .invalidRequest, path: path, message: "level \(region.level) does not exist (the slide has \(levels.count))", region: region)
        }
        guard region.width > 0, region.height > 0, region.width <= 1 << 15, region.height <= 1 << 15 else {
            throw SlideError(kind: .invalidRequest, path: path, message: "region size must be 1...32768 per side", region: region)
        }
        precondition(rgb.count >= 3 * region.width * region.height, "RGB buffer too small for \(region)")
        let count = region.width * region.height
        let argb = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: count)
        defer { argb.deallocate() }
        let osr = try currentHandle()
        openslide_read_region(osr, argb.baseAddress, Int64(region.level0X), Int64(region.level0Y), Int32(region.level),
                              Int64(region.width), Int64(region.height))
        let error = openslide_get_error(osr).map { String(cString: $0) }
        lock.unlock()
        if let error {
            discard(osr)
            throw SlideError(kind: .openslide, path: path, message: error, region: region)
        }
        Pixels.unpremultiply(rgb: rgb, argb: UnsafeBufferPointer(argb))
    }

    /// The whole slide scaled to fit in `maxSize` x `maxSize`, area-averaged from the best level.
    ///
    /// The level is read in blocks of at most about 2048 x 2048 pixels, so a slide with a single
    /// huge level still makes a thumbnail in bounded memory.
    public func thumbnail(maxSize: Int) throws(SlideError) -> Raster {
        let (w0, h0) = dimensions
        let scale = max(1.0, Double(max(w0, h0)) / Double(maxSize))
        let tw = max(1, Int((Double(w0) / scale).rounded())), th = max(1, Int((Double(h0) / scale).rounded()))
        let level = bestLevel(forDownsample: scale)
        let lw = levels[level].width, lh = levels[level].height
        let xEdges = Resample.boxEdges(source: lw, target: tw), yEdges = Resample.boxEdges(source: lh, target: th)
        let block = max(1, min(256, 2048 / Int((Double(lw) / Double(tw)).rounded(.up))))
        var thumb = Raster(width: tw, height: th, channels: 3)
        let ds = levels[level].downsample
        for oy in stride(from: 0, to: th, by: block) {
            let oy1 = min(th, oy + block)
            for ox in stride(from: 0, to: tw, by: block) {
                let ox1 = min(tw, ox + block)
                let sx = xEdges[ox], sy = yEdges[oy]
                let region = SlideRegion(level0X: Int((Double(sx) * ds).rounded()), level0Y: Int((Double(sy) * ds).rounded()),
                                         level: level, width: max(1, xEdges[ox1] - sx), height: max(1, yEdges[oy1] - sy))
                let source = try readRegion(region)
                let part = Resample.area(source, xEdges: xEdges[ox ... ox1].map { $0 - sx }[...],
                                         yEdges: yEdges[oy ... oy1].map { $0 - sy }[...])
                for row in 0 ..< part.height {
                    let d = ((oy + row) * tw + ox) * 3
                    thumb.pixels.replaceSubrange(d ..< d + part.width * 3,
                                                 with: part.pixels[row * part.width * 3 ..< (row + 1) * part.width * 3])
                }
            }
        }
        return thumb
    }

    // MARK: handle management

    /// Why OpenSlide did not recognise `path`, told apart from an unsupported format where the file says more:
    /// unreadable (permissions), empty, or a TIFF cut short.
    static func unrecognised(_ path: String) -> SlideError {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            return SlideError(kind: errno == EACCES || errno == EPERM ? .unreadable : .openslide, path: path, message: "cannot open: \(reason)")
        }
        defer { close(fd) }
        var header = [UInt8](repeating: 0, count: 8)
        let got = read(fd, &header, 8)
        let size = lseek(fd, 0, SEEK_END)
        if size == 0 { return SlideError(kind: .emptyFile, path: path, message: "the file has 0 bytes") }
        if got == 8, header[0] == header[1], header[0] == 0x49 || header[0] == 0x4D {
            let little = header[0] == 0x49
            let magic = little ? Int(header[2]) | Int(header[3]) << 8 : Int(header[2]) << 8 | Int(header[3])
            let b = header[4 ..< 8].map(Int.init)
            let ifd = little ? b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24 : b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]
            if magic == 42, ifd >= size {
                return SlideError(kind: .truncated, path: path, message: "a TIFF of \(size) bytes whose first image directory is at byte \(ifd)")
            }
        }
        return SlideError(kind: .unsupportedFormat, path: path, message: "not a file that OpenSlide can recognize")
    }

    private static func openHandle(path: String) throws(SlideError) -> OpaquePointer {
        guard FileManager.default.fileExists(atPath: path) else {
            throw SlideError(kind: .missingFile, path: path, message: "no such file")
        }
        guard let osr = openslide_open(path) else { throw unrecognised(path) }
        if let message = openslide_get_error(osr) {
            let text = String(cString: message)
            openslide_close(osr)
            throw SlideError(kind: .openslide, path: path, message: text)
        }
        return osr
    }

    /// Returns a working handle with the read lock held (the caller unlocks), reopening a broken one first.
    private func currentHandle() throws(SlideError) -> OpaquePointer {
        lock.lockRead()
        if let handle { return handle }
        lock.unlock()
        lock.lockWrite()
        if handle == nil {
            do { handle = try Slide.openHandle(path: path) } catch {
                lock.unlock()
                throw error
            }
        }
        lock.unlock()
        return try currentHandle()
    }

    /// Closes `osr` after an error, unless another read already replaced it.
    private func discard(_ osr: OpaquePointer) {
        lock.lockWrite()
        if handle == osr {
            openslide_close(osr)
            handle = nil
        }
        lock.unlock()
    }
}

/// A pthread read-write lock: many readers or one writer.
final class ReadWriteLock: @unchecked Sendable {
    private let rw: UnsafeMutablePointer<pthread_rwlock_t>

    init() {
        rw = .allocate(capacity: 1)
        pthread_rwlock_init(rw, nil)
    }

    deinit {
        pthread_rwlock_destroy(rw)
        rw.deallocate()
    }

    func lockRead() { pthread_rwlock_rdlock(rw) }
    func lockWrite() { pthread_rwlock_wrlock(rw) }
    func unlock() { pthread_rwlock_unlock(rw) }
}
