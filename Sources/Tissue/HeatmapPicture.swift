import SlideIO

/// A per-cell score drawn over a slide thumbnail: each cell's rectangle tinted on a diverging scale (blue for
/// negative, white for zero, red for positive, by |score| over the largest |score|), the grid of scored cells
/// outlined in gray, and a legend strip below with the colour bar and its end values.
public enum HeatmapPicture {
    /// A scored cell: its rectangle in thumbnail pixels and its score.
    public struct Cell: Sendable {
        public var x: Int, y: Int, width: Int, height: Int
        public var score: Float
        public init(x: Int, y: Int, width: Int, height: Int, score: Float) {
            self.x = x; self.y = y; self.width = width; self.height = height; self.score = score
        }
    }

    /// The diverging colour of `t` in -1...1.
    public static func color(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let v = min(1, max(-1, t.isFinite ? t : 0))
        let fade = UInt8((255 * (1 - abs(v))).rounded())
        return v >= 0 ? (255, fade, fade) : (fade, fade, 255)
    }

    public static func draw(thumbnail: Raster, cells: [Cell], opacity: Float = 0.55) -> Raster {
        let base = thumbnail.converted(toChannels: 3)
        let legendHeight = 40, w = max(base.width, 160), h = base.height + legendHeight
        var canvas = Raster(width: w, height: h, channels: 3)
        for y in 0 ..< base.height {
            let d = 3 * y * w, s = 3 * y * base.width
            canvas.pixels.replaceSubrange(d ..< d + 3 * base.width, with: base.pixels[s ..< s + 3 * base.width])
        }
        let largest = cells.map { abs($0.score) }.filter(\.isFinite).max() ?? 0
        let scale = largest > 0 ? 1 / largest : 0
        func blend(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8), _ a: Float) {
            guard x >= 0, y >= 0, x < w, y < base.height else { return }
            let o = 3 * (y * w + x)
            for (k, v) in [c.0, c.1, c.2].enumerated() {
                canvas.pixels[o + k] = UInt8((Float(canvas.pixels[o + k]) * (1 - a) + Float(v) * a).rounded())
            }
        }
        for cell in cells {
            let c = color(cell.score * scale)
            for y in cell.y ..< cell.y + max(1, cell.height) { for x in cell.x ..< cell.x + max(1, cell.width) { blend(x, y, c, opacity) } }
        }
        for cell in cells where cell.width > 2 && cell.height > 2 {
            for x in cell.x ..< cell.x + cell.width { blend(x, cell.y, (90, 90, 90), 0.8); blend(x, cell.y + cell.height - 1, (90, 90, 90), 0.8) }
            for y in cell.y ..< cell.y + cell.height { blend(cell.x, y, (90, 90, 90), 0.8); blend(cell.x + cell.width - 1, y, (90, 90, 90), 0.8) }
        }
        // Legend: the colour bar from -largest to +largest, its end values and 0 written under it.
        let barX = 8, barY = base.height + 6, barW = w - 16, barH = 12
        for x in 0 ..< barW {
            let c = color(Float(x) / Float(max(1, barW - 1)) * 2 - 1)
            for y in barY ..< barY + barH {
                let o = 3 * (y * w + barX + x)
                canvas.pixels[o] = c.0; canvas.pixels[o + 1] = c.1; canvas.pixels[o + 2] = c.2
            }
        }
        let textY = barY + barH + 4
        Digits.write(Digits.format(-largest), x: barX, y: textY, scale: 2, into: &canvas)
        Digits.write("0", x: barX + barW / 2 - 3, y: textY, scale: 2, into: &canvas)
        let right = Digits.format(largest)
        Digits.write(right, x: barX + barW - Digits.width(right, scale: 2), y: textY, scale: 2, into: &canvas)
        return canvas
    }
}

/// A 3 x 5 pixel font for legends (digits, capitals, '.', '-', '+', ':', '%', '=', space; lower case is drawn as
/// capitals), drawn in black at an integer scale.
enum Digits {
    static let letters: [Character: [String]] = [
        "A": ["010", "101", "111", "101", "101"], "B": ["110", "101", "110", "101", "110"], "C": ["011", "100", "100", "100", "011"],
        "D": ["110", "101", "101", "101", "110"], "E": ["111", "100", "110", "100", "111"], "F": ["111", "100", "110", "100", "100"],
        "G": ["011", "100", "101", "101", "011"], "H": ["101", "101", "111", "101", "101"], "I": ["111", "010", "010", "010", "111"],
        "J": ["001", "001", "001", "101", "010"], "K": ["101", "110", "100", "110", "101"], "L": ["100", "100", "100", "100", "111"],
        "M": ["101", "111", "111", "101", "101"], "N": ["110", "101", "101", "101", "101"], "O": ["010", "101", "101", "101", "010"],
        "P": ["110", "101", "110", "100", "100"], "Q": ["010", "101", "101", "110", "011"], "R": ["110", "101", "110", "101", "101"],
        "S": ["011", "100", "010", "001", "110"], "T": ["111", "010", "010", "010", "010"], "U": ["101", "101", "101", "101", "111"],
        "V": ["101", "101", "101", "101", "010"], "W": ["101", "101", "111", "111", "101"], "X": ["101", "101", "010", "101", "101"],
        "Y": ["101", "101", "010", "010", "010"], "Z": ["111", "001", "010", "100", "111"], ":": ["000", "010", "000", "010", "000"],
        "%": ["101", "001", "010", "100", "101"], "=": ["000", "111", "000", "111", "000"], " ": ["000", "000", "000", "000", "000"],
    ]

    static let glyphs: [Character: [String]] = [
        "0": ["111", "101", "101", "101", "111"], "1": ["010", "110", "010", "010", "111"], "2": ["111", "001", "111", "100", "111"],
        "3": ["111", "001", "111", "001", "111"], "4": ["101", "101", "111", "001", "001"], "5": ["111", "100", "111", "001", "111"],
        "6": ["111", "100", "111", "101", "111"], "7": ["111", "001", "010", "010", "010"], "8": ["111", "101", "111", "101", "111"],
        "9": ["111", "101", "111", "001", "111"], ".": ["000", "000", "000", "000", "010"], "-": ["000", "000", "111", "000", "000"],
        "e": ["000", "111", "111", "100", "111"], "+": ["000", "010", "111", "010", "000"],
    ]

    /// Three significant digits.
    static func format(_ v: Float) -> String {
        let magnitude = abs(v)
        if magnitude == 0 { return "0" }
        if magnitude >= 0.01 && magnitude < 10000 {
            let decimals = magnitude >= 100 ? 0 : magnitude >= 10 ? 1 : magnitude >= 1 ? 2 : 3
            var text = String(Int((magnitude * Float(pow10(decimals))).rounded()))
            if decimals > 0 {
                while text.count <= decimals { text = "0" + text }
                text.insert(".", at: text.index(text.endIndex, offsetBy: -decimals))
            }
            return (v < 0 ? "-" : "") + text
        }
        var exponent = 0, mantissa = magnitude
        while mantissa >= 10 { mantissa /= 10; exponent += 1 }
        while mantissa < 1 { mantissa *= 10; exponent -= 1 }
        return (v < 0 ? "-" : "") + format(mantissa) + "e" + (exponent < 0 ? "-" : "+") + String(abs(exponent))
    }

    static func pow10(_ n: Int) -> Int { (0 ..< n).reduce(1) { r, _ in r * 10 } }

    static func width(_ text: String, scale: Int) -> Int { text.count * 4 * scale }

    static func write(_ text: String, x: Int, y: Int, scale: Int, into canvas: inout Raster) {
        for (i, ch) in text.enumerated() {
            guard let rows = letters[Character(ch.uppercased())] ?? glyphs[ch] else { continue }
            for (r, row) in rows.enumerated() {
                for (c, bit) in row.enumerated() where bit == "1" {
                    for dy in 0 ..< scale { for dx in 0 ..< scale {
                        let px = x + i * 4 * scale + c * scale + dx, py = y + r * scale + dy
                        guard px >= 0, py >= 0, px < canvas.width, py < canvas.height else { continue }
                        let o = 3 * (py * canvas.width + px)
                        canvas.pixels[o] = 0; canvas.pixels[o + 1] = 0; canvas.pixels[o + 2] = 0
                    } }
                }
            }
        }
    }
}
