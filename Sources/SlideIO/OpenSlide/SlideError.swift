/// An error from opening or reading a slide through OpenSlide, with the C message and where it happened.
public struct SlideError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this was.
    public enum Kind: String, Sendable {
        /// No file at the path.
        case missingFile = "missing file"
        /// OpenSlide does not recognise the format.
        case unsupportedFormat = "unsupported format"
        /// OpenSlide recognised the file but failed on it (the C library's message is in `message`).
        case openslide = "openslide error"
        /// The caller asked for something the slide does not have (a level out of range, a negative size).
        case invalidRequest = "invalid request"
        /// The file is there but this process may not read it.
        case unreadable = "permission denied"
        /// The file has no bytes.
        case emptyFile = "empty file"
        /// A TIFF whose image directory lies past the end of the file (an interrupted copy or download).
        case truncated = "truncated file"
    }

    public let kind: Kind
    /// The slide file.
    public let path: String
    /// The C library's message, or ours for requests that never reached it.
    public let message: String
    /// The region being read, when the failure happened during a read.
    public let region: SlideRegion?

    public init(kind: Kind, path: String, message: String, region: SlideRegion? = nil) {
        self.kind = kind
        self.path = path
        self.message = message
        self.region = region
    }

    /// One line: file, what failed, and what to do about it.
    public var description: String {
        var text = "\(path): \(kind.rawValue): \(message)"
        if let region { text += " (reading \(region))" }
        switch kind {
        case .missingFile: text += "; check the path"
        case .unsupportedFormat: text += "; OpenSlide \(Slide.openSlideVersion) reads tiled slides (Aperio, Hamamatsu, MIRAX, Leica, Philips, Ventana, tiled TIFF); convert stripped or plain images to a tiled pyramidal TIFF"
        case .openslide: text += "; the file may be truncated or corrupt"
        case .unreadable: text += "; give this user read permission (chmod/chown) or run as a user who has it"
        case .emptyFile, .truncated: text += "; copy the slide again from its source"
        case .invalidRequest: break
        }
        return text
    }
}

/// A rectangle to read: level-0 origin, the level, and the size in pixels of that level.
public struct SlideRegion: Sendable, Hashable, CustomStringConvertible {
    public var level0X: Int
    public var level0Y: Int
    public var level: Int
    public var width: Int
    public var height: Int

    public init(level0X: Int, level0Y: Int, level: Int, width: Int, height: Int) {
        self.level0X = level0X
        self.level0Y = level0Y
        self.level = level
        self.width = width
        self.height = height
    }

    public var description: String { "level \(level) at level-0 (\(level0X), \(level0Y)), \(width)x\(height)" }
}
