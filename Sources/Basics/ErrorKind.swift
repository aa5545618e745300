/// What kind of failure an error is, for callers that act on it (skip a slide, retry, tell the user to fix an option)
/// rather than only print it. Every stage's error type carries one beside its message.
public enum ErrorKind: String, Sendable, Equatable, CaseIterable {
    /// A file or folder named by the user or recorded in the index is not there.
    case missingFile = "missing-file"
    /// It is there but cannot be read (permissions, I/O error).
    case unreadable
    /// It is readable but not what it should be (truncated, bad format, wrong header).
    case corrupt
    /// A file cannot be written.
    case unwritable
    /// An option or a configuration value is invalid.
    case badOption = "bad-option"
    /// The data does not allow the job (empty split, no tissue, label out of range, ...).
    case badData = "bad-data"
    /// Training diverged (non-finite loss or weights).
    case diverged
    /// Anything else.
    case other
}

/// An error that says what kind of failure it is.
public protocol KindedError: Error {
    var kind: ErrorKind { get }
}

extension Error {
    /// The error's kind, `.other` for errors that do not say.
    public var errorKind: ErrorKind { (self as? any KindedError)?.kind ?? .other }
}
