import Basics
import Foundation

/// PatchGD against GD at one memory budget, from their run directories: what `scripts/demo` prints side by side and
/// writes as `comparison.json` (`{"patchgd": {...}, "gd": {...}, "budget": "..."}`).
public struct RunComparison: Codable, Sendable, Equatable {
    /// One arm: its final epoch's validation accuracy and kappa, its best validation accuracy, its training seconds
    /// (the epochs' sum) and its process's peak memory (VmHWM, the largest over epochs).
    public struct Arm: Codable, Sendable, Equatable {
        public var valAccuracy: Double
        public var valKappa: Double
        public var bestValAccuracy: Double
        public var seconds: Double
        public var peakRSSMB: Double
        public var epochs: Int
        public var runDirectory: String

        enum CodingKeys: String, CodingKey {
            case valAccuracy = "val_accuracy", valKappa = "val_kappa", bestValAccuracy = "best_val_accuracy", seconds
            case peakRSSMB = "peak_rss_mb", epochs, runDirectory = "run_directory"
        }
    }

    public var patchgd: Arm
    public var gd: Arm
    public var budget: String
    /// Validation images, and the standard error of an accuracy near the two arms' mean on that many.
    public var validationImages: Int
    public var standardError: Double
    /// PatchGD's final validation accuracy minus GD's, in standard errors.
    public var gapInStandardErrors: Double

    enum CodingKeys: String, CodingKey {
        case patchgd, gd, budget, validationImages = "validation_images", standardError = "standard_error"
        case gapInStandardErrors = "gap_in_standard_errors"
    }

    /// - Throws: `ReportError` naming the run directory without validated epochs.
    public static func load(patchgd: String, gd: String, budget: String) throws -> RunComparison {
        let (a, n) = try arm(patchgd), (b, m) = try arm(gd)
        guard n == m else { throw ReportError("\(patchgd) validated \(n) images and \(gd) \(m); compare runs on the same validation set") }
        let p = (a.valAccuracy + b.valAccuracy) / 2
        let se = n > 0 ? (p * (1 - p) / Double(n)).squareRoot() : 0
        return RunComparison(patchgd: a, gd: b, budget: budget, validationImages: n, standardError: se,
                             gapInStandardErrors: se > 0 ? (a.valAccuracy - b.valAccuracy) / se : 0)
    }

    static func arm(_ directory: String) throws -> (Arm, Int) {
        let report = try RunReport.load(runDirectory: directory)
        guard let last = report.epochs.last, let accuracy = last.valAccuracy, let kappa = last.valKappa else {
            throw ReportError("\(directory): no validated epoch in metrics.jsonl; train with a validation split first")
        }
        let images = last.valConfusion?.joined().reduce(0, +) ?? 0
        return (Arm(valAccuracy: accuracy, valKappa: kappa, bestValAccuracy: report.epochs.compactMap(\.valAccuracy).max() ?? accuracy,
                    seconds: report.epochs.reduce(0) { $0 + $1.seconds }, peakRSSMB: report.epochs.map(\.peakRssMb).max() ?? 0,
                    epochs: report.epochs.count, runDirectory: report.runDirectory), images)
    }

    /// The side-by-side table.
    public var table: String {
        func row(_ name: String, _ a: Arm) -> String {
            name.padding(toLength: 9, withPad: " ", startingAt: 0)
                + String(format: "%10.3f %9.3f %10.3f %9.0f %10.0f", a.valAccuracy, a.valKappa, a.bestValAccuracy, a.seconds, a.peakRSSMB)
        }
        return ["budget: \(budget)",
                "method     val acc    kappa   best acc   seconds   peak MiB",
                row("PatchGD", patchgd), row("GD", gd),
                String(format: "PatchGD - GD: %+.3f = %+.1f standard errors of the %d validation images (%.3f each)",
                       patchgd.valAccuracy - gd.valAccuracy, gapInStandardErrors, validationImages, standardError)].joined(separator: "\n")
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(self), to: path)
    }
}
