import Basics
import Foundation
import Stain

extension StainTarget {
    /// Reads a stain target file (`gigapatch-stain fit`); the error names the file and what to do.
    public static func load(path: String) throws -> StainTarget {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError("\(path): stain target not found; write one with gigapatch-stain fit", kind: .missingFile)
        }
        do { return try decode(data) } catch {
            throw TrainingError("\(path): \(error); write one with gigapatch-stain fit", kind: .badOption)
        }
    }

    /// Writes the target atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(try encoded(), to: path)
    }
}
