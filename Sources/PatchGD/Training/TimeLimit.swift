import ArgumentParser
import Foundation

/// A wall-clock limit on one invocation of the trainer (`--time-limit`): a batch job's allocation, or any session
/// shorter than the run. Training stops at an epoch boundary, with that epoch's checkpoint committed, when the next
/// epoch would not end in time; `--resume` continues it exactly (see `Trainer`).
///
/// Written as `90m`, `1h30m`, `1.5h`, `5400s`, `2d`, or Slurm's `MM:SS`, `H:MM:SS` and `D-HH:MM:SS`. A bare number is
/// refused: Slurm reads it as minutes, other tools as seconds.
public struct TimeLimit: Sendable, Equatable, ExpressibleByArgument, CustomStringConvertible {
    public var seconds: Double

    public init(seconds: Double) { self.seconds = seconds }

    public init?(argument: String) {
        guard let seconds = Self.parse(argument.trimmingCharacters(in: .whitespaces)), seconds > 0, seconds.isFinite else { return nil }
        self.seconds = seconds
    }

    /// Whether another epoch may start: `elapsed` seconds since the invocation began, `longestEpoch` the longest
    /// epoch of this invocation (nil before the first, which always runs: nothing estimates it, and a limit shorter
    /// than one epoch should still make progress) including its validation and checkpoint.
    public func allowsEpoch(elapsed: Double, longestEpoch: Double?) -> Bool {
        guard let longestEpoch else { return true }
        return elapsed + longestEpoch <= seconds
    }

    public var description: String {
        let total = Int(seconds.rounded())
        return String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
    }

    public var defaultValueDescription: String { description }

    /// Seconds from the forms above, nil for anything else.
    static func parse(_ text: String) -> Double? {
        if text.contains(":") || text.contains("-") { return clock(text) }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var total = 0.0, number = "", sawUnit = false
        for character in text {
            if character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number) {
                total += value * unit
                number = ""
                sawUnit = true
            } else {
                return nil
            }
        }
        return number.isEmpty && sawUnit ? total : nil
    }

    /// `MM:SS`, `H:MM:SS`, `D-HH`, `D-HH:MM` or `D-HH:MM:SS` (Slurm's `--time` forms with a colon or a day).
    static func clock(_ text: String) -> Double? {
        let dayParts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard dayParts.count <= 2 else { return nil }
        let days = dayParts.count == 2 ? Int(dayParts[0]) : 0
        let fields = dayParts.last!.split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard let days, days >= 0, !fields.contains(nil), fields.allSatisfy({ $0! >= 0 }) else { return nil }
        let f = fields.map { $0! }
        let (h, m, s): (Int, Int, Int)
        switch (dayParts.count, f.count) {
        case (1, 2): (h, m, s) = (0, f[0], f[1])
        case (1, 3), (2, 3): (h, m, s) = (f[0], f[1], f[2])
        case (2, 1): (h, m, s) = (f[0], 0, 0)
        case (2, 2): (h, m, s) = (f[0], f[1], 0)
        default: return nil
        }
        return Double(((days * 24 + h) * 60 + m) * 60 + s)
    }
}
