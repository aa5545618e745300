import Foundation

/// Line charts as inline SVG (no script, no outside file): axes with ticks, one polyline and dots per series, a legend.
enum SVGChart {
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
        var color: String
    }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"]

    /// "Nice" tick values covering lo...hi (about `count` of them; [lo] for a range too narrow to step through).
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / Double(count), magnitude = pow(10, floor(log10(raw)))
        let step = [1, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var out: [Double] = []
        // A step near the spacing of doubles (lo and hi a few ulps apart) would stop advancing.
        guard step > 1e-12 * max(abs(lo), abs(hi)) else { return [lo] }
        var v = ceil(lo / step) * step
        while v <= hi + step * 1e-9 && out.count <= 2 * count + 2 { out.append(v); v += step }
        return out
    }

    /// Whether a and b are the same value for a chart's axis: equal, or apart by rounding only (a val accuracy of 0.5
    /// beside a kappa of 0.5000000000000001).
    static func same(_ a: Double, _ b: Double) -> Bool { abs(b - a) <= 1e-9 * max(abs(a), abs(b)) }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1000 { return String(format: "%.0f", v) }
        if a >= 10 { return String(format: "%.0f", v) }
        if a >= 1 { return String(format: "%.1f", v) }
        if a >= 0.01 { return String(format: "%.2f", v) }
        return String(format: "%.1e", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func lineChart(title: String, xLabel: String, series: [Series], width: Int = 460, height: Int = 260) -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        guard !all.isEmpty else { return "<figure class=\"chart\"><figcaption>\(escape(title)): no data</figcaption></figure>" }
        let left = 56.0, right = 12.0, top = 28.0, bottom = 40.0
        let plotW = Double(width) - left - right, plotH = Double(height) - top - bottom
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!, y0 = all.map(\.y).min()!, y1 = all.map(\.y).max()!
        if same(x0, x1) { x0 -= 0.5; x1 += 0.5 }
        if same(y0, y1) { y0 -= abs(y0) * 0.1 + 0.05; y1 += abs(y1) * 0.1 + 0.05 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotW }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotH }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\">"
        svg += "<text x=\"\(width / 2)\" y=\"16\" text-anchor=\"middle\" class=\"title\">\(escape(title))</text>"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(plotW)\" height=\"\(plotH)\" fill=\"none\" stroke=\"#999\"/>"
        for t in ticks(y0, y1) {
            let y = py(t)
            svg += "<line x1=\"\(left)\" x2=\"\(left + plotW)\" y1=\"\(y)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 4)\" y=\"\(y + 4)\" text-anchor=\"end\" class=\"tick\">\(label(t))</text>"
        }
        for t in ticks(x0, x1) {
            let x = px(t)
            svg += "<line x1=\"\(x)\" x2=\"\(x)\" y1=\"\(top + plotH)\" y2=\"\(top + plotH + 4)\" stroke=\"#999\"/>"
            svg += "<text x=\"\(x)\" y=\"\(top + plotH + 16)\" text-anchor=\"middle\" class=\"tick\">\(label(t))</text>"
        }
        svg += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\" class=\"axis\">\(escape(xLabel))</text>"
        for (i, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            guard !points.isEmpty else { continue }
            let path = points.map { String(format: "%.1f,%.1f", px($0.x), py($0.y)) }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-series=\"\(escape(s.name))\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\" points=\"\(path)\"/>"
            for p in points { svg += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" ", px(p.x), py(p.y)) + "fill=\"\(s.color)\"/>" }
            let ly = top + 12 + Double(i) * 14
            svg += "<rect x=\"\(left + 8)\" y=\"\(ly - 8)\" width=\"10\" height=\"3\" fill=\"\(s.color)\"/>"
            svg += "<text x=\"\(left + 22)\" y=\"\(ly - 4)\" class=\"legend\">\(escape(s.name))</text>"
        }
        return svg + "</svg>"
    }
}
