import Foundation
@testable import Report
import TestSupport
import Testing

/// A run directory as gigapatch-train leaves it (metrics, options), a predictions CSV and a QC folder, written by hand.
struct ReportFixture {
    let dir = TemporaryDirectory()

    init(epochs: Int = 4) throws {
        let run = dir.file("run")
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let lines = (1 ... epochs).map { e in
            "{\"epoch\":\(e),\"train_loss\":\(2.3 - 0.2 * Double(e)),\"train_accuracy\":\(0.1 * Double(e)),\"val_loss\":\(2.2 - 0.15 * Double(e)),"
                + "\"val_accuracy\":\(0.08 * Double(e)),\"val_kappa\":\(0.1 * Double(e)),\"val_confusion\":[[5,1,0],[2,3,1],[0,1,6]],"
                + "\"lr\":0.001,\"seconds\":\(30 + e),\"patches_per_s\":500,\"peak_rss_mb\":400}"
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: run + "/metrics.jsonl", atomically: true, encoding: .utf8)
        try "{\"backbone\": \"tiny\", \"lr\": 0.001, \"select-by\": \"accuracy\", \"epochs\": \(epochs)}".write(toFile: run + "/options.json", atomically: true, encoding: .utf8)
        try "image_id,predicted,prob_0,prob_1,prob_2,label\ns1,0,0.7,0.2,0.1,0\ns2,2,0.1,0.3,0.6,1\n\"a,b\",1,0.2,0.5,0.3,\n"
            .write(toFile: dir.file("preds.csv"), atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: dir.file("qc"), withIntermediateDirectories: true)
        // A 1 x 1 white PNG.
        let png = Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC")!
        try png.write(to: URL(fileURLWithPath: dir.file("qc/s1.png")))
        try "{\"failures\":[{\"slide\":\"bad.svs\",\"error\":\"not a file that OpenSlide can recognize\"}],\"empty_slides\":[{\"slide\":\"glass.svs\",\"error\":\"no patch holds enough tissue\"}]}".write(toFile: dir.file("ingest.json"), atomically: true, encoding: .utf8)
    }
}

struct ReportTests {
    @Test func theReportHoldsCurvesConfusionProvenancePredictionsAndQC() throws {
        let f = try ReportFixture()
        let report = try RunReport.load(runDirectory: f.dir.file("run"), predictions: f.dir.file("preds.csv"), qcDirectory: f.dir.file("qc"),
                                        ingestSummary: f.dir.file("ingest.json"))
        #expect(report.epochs.count == 4 && report.selectBy == "accuracy")
        #expect(report.predictions.map(\.imageID) == ["s1", "s2", "a,b"] && report.predictions[2].label == nil)
        let html = report.html()
        #expect(html.components(separatedBy: "<svg").count - 1 == 6)
        #expect(html.contains("class=\"confusion\"") && html.contains("precision") && html.contains("recall"))
        #expect(html.contains("<code>tiny</code>") && html.contains("table class=\"predictions sortable\""))
        #expect(html.contains("data:image/png;base64,") && html.contains("bad.svs") && html.contains("not a file that OpenSlide can recognize"))
        #expect(html.contains("glass.svs") && html.contains("empty: no patch holds enough tissue"))
        // Nothing from an outside host: no http(s) source, stylesheet or script.
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("@import"))
    }

    /// Ranges one ulp wide (a val accuracy of 0.5 beside a kappa of 0.5000000000000001, both charted against time)
    /// once made the tick loop run until memory ran out, killing gigapatch-train as it wrote its report.
    @Test func chartsOfValuesApartByRoundingOnlyHaveFewTicks() {
        #expect(SVGChart.ticks(0.5, 0.5.nextUp) == [0.5])
        let unit = SVGChart.ticks(0, 1)
        #expect(unit.count == 6 && unit.first == 0 && abs(unit.last! - 1) < 1e-12)
        let svg = SVGChart.lineChart(title: "t", xLabel: "minutes", series: [
            SVGChart.Series(name: "val accuracy", points: [(0.005, 0.5)], color: "#000"),
            SVGChart.Series(name: "val kappa", points: [(0.005, 0.5000000000000001)], color: "#111")])
        #expect(svg.contains("<polyline") && svg.components(separatedBy: "class=\"tick\"").count < 30)
    }

    @Test func precisionAndRecallFromTheConfusionMatrix() {
        let pr = RunReport.precisionRecall([[5, 1, 0], [2, 3, 1], [0, 0, 0]])
        #expect(pr[0].precision == 5.0 / 7 && pr[0].recall == 5.0 / 6 && pr[2].recall == nil && pr[2].precision == 0)
    }

    @Test func badInputsAreNamed() throws {
        let f = try ReportFixture()
        #expect { try RunReport.load(runDirectory: f.dir.file("none")) } throws: { "\($0)".contains("none") }
        try "garbage\n".write(toFile: f.dir.file("run/metrics.jsonl"), atomically: true, encoding: .utf8)
        #expect { try RunReport.load(runDirectory: f.dir.file("run")) } throws: { "\($0)".contains("metrics.jsonl") && "\($0)".contains("line 1") }
    }

    static let chromium: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func browser(_ arguments: [String]) throws -> (stdout: String, stderr: String, status: Int32) {
        let process = Process(), out = Pipe(), err = Pipe()
        process.executableURL = URL(fileURLWithPath: chromium!)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--enable-logging=stderr", "--v=0"] + arguments
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self), process.terminationStatus)
    }

    /// What a person would see, in a real browser: the page loads from the file system without console errors, the
    /// charts and tables are in the DOM after the script ran, sorting works, and a screenshot is not blank.
    @Test(.enabled(if: chromium != nil, "chromium is not installed (scripts/setup installs it)"))
    func theReportRendersInHeadlessChromium() throws {
        let f = try ReportFixture()
        let page = f.dir.file("report.html")
        try RunReport.load(runDirectory: f.dir.file("run"), predictions: f.dir.file("preds.csv"), qcDirectory: f.dir.file("qc")).write(to: page)
        let dom = try Self.browser(["--dump-dom", "file://" + page])
        #expect(dom.status == 0)
        #expect(dom.stdout.components(separatedBy: "<svg").count - 1 == 6, "charts in the DOM")
        #expect(dom.stdout.contains("polyline") && dom.stdout.contains("class=\"confusion\""))
        #expect(!dom.stderr.contains("Uncaught") && !dom.stderr.contains("SyntaxError"), "console: \(dom.stderr.suffix(600))")
        // The sort script runs: a click on "confidence" in the DOM reorders the rows (checked through a test page).
        let probe = f.dir.file("probe.html")
        let html = try String(contentsOfFile: page, encoding: .utf8)
            .replacingOccurrences(of: "</body></html>", with: "<script>document.querySelectorAll('table.predictions th')[3].click();document.body.setAttribute('data-first', document.querySelector('table.predictions tbody tr td').textContent);</script></body></html>")
        try html.write(toFile: probe, atomically: true, encoding: .utf8)
        let sorted = try Self.browser(["--dump-dom", "file://" + probe])
        #expect(sorted.stdout.contains("data-first=\"a,b\""), "ascending confidence puts a,b (0.5) first")
        let shot = f.dir.file("shot.png")
        _ = try Self.browser(["--screenshot=" + shot, "--window-size=1200,1600", "file://" + page])
        let data = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(data.count > 20_000, "screenshot of \(data.count) bytes: a blank page compresses to a few KB")
    }
}
