import Foundation
import TestSupport
import Testing
@testable import Report

/// `comparison.json`: the documented keys, the final and best epochs, the sums and maxima, the gap in standard errors.
struct ComparisonTests {
    static func run(_ dir: TemporaryDirectory, _ name: String, accuracies: [Double], seconds: Double, peak: Double) throws -> String {
        let folder = dir.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lines = accuracies.enumerated().map { i, a in
            let right = Int((a * 300).rounded())
            return #"{"epoch":\#(i + 1),"train_loss":1,"train_accuracy":0.5,"val_loss":1,"val_accuracy":\#(a),"val_kappa":\#(a / 2),"val_confusion":[[\#(right),\#(300 - right)],[0,0]],"lr":0.001,"seconds":\#(seconds),"patches_per_s":10,"peak_rss_mb":\#(peak + Double(i))}"#
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: folder + "/metrics.jsonl", atomically: true, encoding: .utf8)
        return folder
    }

    @Test func theFileHasTheDocumentedKeysAndFigures() throws {
        let dir = TemporaryDirectory()
        let patchgd = try Self.run(dir, "pgd", accuracies: [0.3, 0.6, 0.5], seconds: 100, peak: 600)
        let gd = try Self.run(dir, "gd", accuracies: [0.2, 0.4], seconds: 10, peak: 120)
        let comparison = try RunComparison.load(patchgd: patchgd, gd: gd, budget: "one 64 px image with gradients per image")
        try comparison.write(to: dir.file("comparison.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("comparison.json")))) as? [String: Any])
        #expect(object["budget"] as? String == "one 64 px image with gradients per image")
        for arm in ["patchgd", "gd"] {
            let values = try #require(object[arm] as? [String: Any], "\(arm)")
            for key in ["val_accuracy", "val_kappa", "seconds", "peak_rss_mb"] { #expect(values[key] is Double, "\(arm).\(key)") }
        }
        #expect(comparison.patchgd.valAccuracy == 0.5 && comparison.patchgd.bestValAccuracy == 0.6 && comparison.patchgd.valKappa == 0.25)
        #expect(comparison.patchgd.seconds == 300 && comparison.patchgd.peakRSSMB == 602 && comparison.gd.seconds == 20)
        #expect(comparison.validationImages == 300)
        let se = (0.45 * 0.55 / 300).squareRoot()
        #expect(abs(comparison.standardError - se) < 1e-12 && abs(comparison.gapInStandardErrors - 0.1 / se) < 1e-9)
        #expect(comparison.table.contains("PatchGD") && comparison.table.contains("standard errors"))
    }

    @Test func aRunWithoutValidationIsNamed() throws {
        let dir = TemporaryDirectory()
        let gd = try Self.run(dir, "gd", accuracies: [0.2], seconds: 10, peak: 120)
        try FileManager.default.createDirectory(atPath: dir.file("empty"), withIntermediateDirectories: true)
        let error = #expect(throws: ReportError.self) { try RunComparison.load(patchgd: dir.file("empty"), gd: gd, budget: "b") }
        #expect(error?.description.contains("empty") == true)
    }
}
