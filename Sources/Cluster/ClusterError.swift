import Basics

/// An MPI call that failed, or an MPI library that could not be loaded: what was done and MPI's message.
public struct ClusterError: Error, Sendable, CustomStringConvertible, KindedError {
    public let message: String
    public let kind: ErrorKind

    public init(_ message: String, kind: ErrorKind = .other) {
        self.message = message
        self.kind = kind
    }

    public var description: String { message }
}
