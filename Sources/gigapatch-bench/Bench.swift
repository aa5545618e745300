import ArgumentParser
import Foundation
import GigapatchCLI
import PatchGD
import PatchIndex
import SlideIO

/// `gigapatch-bench`: measures Gigapatch's engines; prints one JSON line per measurement.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-bench",
        abstract: "Time Gigapatch's engines (release builds only give meaningful numbers).",
        subcommands: [TrainBench.self, InferBench.self, ConvBench.self, GemmBench.self, PatchGDBench.self, ReadPatches.self, CrossCheck.self, StainBench.self,
                      AllReduceBench.self, ActivationsBench.self])
}

/// Reads every indexed patch of a tiling back from its slides, as the trainer will, and reports patches per second.
struct ReadPatches: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "read-patches",
        abstract: "Read all patches of a tiling through OpenSlide (RGB, as the trainer reads them) and report patches/s.")

    @Option(help: "Patch index database.") var db: String
    @Option(help: "Tiling id (default: the newest).") var tiling: Int64?
    @Option(help: "Reader threads.") var threads: Int = 1
    @Option(help: "Read at most this many patches.") var limit: Int?
    @Option(help: "Also write 'path x y level size' per patch to this file (for reference loops).") var export: String?

    func run() throws {
        let index = try PatchIndex(path: db)
        let tilingID = try tiling ?? index.newestTilingID() ?? 0
        let rows = try index.patchLocations(tilingID: tilingID).map { ($0.path, $0.level0X, $0.level0Y, $0.level, $0.readSize) }
        let patches = limit.map { Array(rows.prefix($0)) } ?? rows
        guard !patches.isEmpty else { throw ValidationError("no patches in that tiling") }
        if let export {
            try patches.map { "\($0.0) \($0.1) \($0.2) \($0.3) \($0.4)\n" }.joined().write(toFile: export, atomically: true, encoding: .utf8)
        }
        var slides: [String: Slide] = [:]
        for path in Set(patches.map(\.0)) { slides[path] = try Slide(path: path) }
        let opened = slides
        let start = Date()
        let errors = Counter()
        DispatchQueue.concurrentPerform(iterations: max(1, threads)) { worker in
            let size = patches.map(\.4).max()!
            let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 3 * size * size)
            defer { buffer.deallocate() }
            for i in Swift.stride(from: worker, to: patches.count, by: max(1, threads)) {
                let p = patches[i]
                do {
                    try opened[p.0]!.readRegion(SlideRegion(level0X: p.1, level0Y: p.2, level: p.3, width: p.4, height: p.4), into: buffer)
                } catch {
                    errors.add()
                }
            }
        }
        let seconds = Date().timeIntervalSince(start)
        let line: [String: Any] = ["mode": "read-patches", "patches": patches.count, "threads": threads, "seconds": seconds,
                                   "patches_per_s": Double(patches.count) / seconds, "errors": errors.value,
                                   "peak_rss_mb": peakResidentMiB()]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var value: Int { lock.withLock { count } }
    func add() { lock.withLock { count += 1 } }
}

