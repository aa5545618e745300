import Foundation

/// Reports progress of long work on standard error: a live line on a terminal, plain log lines otherwise.
///
/// On a terminal the line is rewritten at most 5 times a second; in logs a line is written at most every
/// 10 seconds (and at the end), so CI output stays readable.
public final class ProgressReporter: @unchecked Sendable {
    private let label: String
    private let unit: String
    private let interactive: Bool
    private let start = Date()
    private var lastReport = Date.distantPast
    private let lock = NSLock()

    /// - Parameters:
    ///   - label: what is being done ("generating", "ingesting").
    ///   - unit: what is counted ("images", "slides").
    public init(label: String, unit: String, interactive: Bool = isatty(STDERR_FILENO) == 1) {
        self.label = label
        self.unit = unit
        self.interactive = interactive
    }

    /// Reports `done` of `total`, with an optional extra such as "1234 patches".
    public func update(done: Int, total: Int, extra: String = "") {
        lock.withLock {
            let now = Date()
            let finished = done >= total
            guard finished || now.timeIntervalSince(lastReport) >= (interactive ? 0.2 : 10) else { return }
            lastReport = now
            let line = Self.line(label: label, unit: unit, done: done, total: total, elapsed: now.timeIntervalSince(start), extra: extra)
            let text = interactive ? "\r\u{1B}[K" + line + (finished ? "\n" : "") : line + "\n"
            FileHandle.standardError.write(Data(text.utf8))
        }
    }

    /// One progress line: "label done/total unit (rate/s, ETA m:ss) extra".
    public static func line(label: String, unit: String, done: Int, total: Int, elapsed: Double, extra: String = "") -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var text = "\(label) \(done)/\(total) \(unit)"
        if rate > 0 {
            text += String(format: " (%.1f/s", rate)
            text += done < total ? ", ETA \(duration(Double(total - done) / rate)))" : ", \(duration(elapsed)))"
        }
        if !extra.isEmpty { text += " " + extra }
        return text
    }

    /// Seconds as "m:ss" or "h:mm:ss".
    public static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
