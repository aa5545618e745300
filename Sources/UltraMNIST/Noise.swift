import Foundation
import Seeded

/// The Kaggle UltraMNIST background, evaluated per pixel so it never needs the whole image in memory.
///
/// A random binary checkerboard of `cells` x `cells` squares is stretched to the image, distorted by an
/// affine map about the centre (rotation, scale, shear), zoomed 2x about the centre, and XOR-ed with
/// filled circles and triangles. Pixels are 0 or 255.
public struct NoiseField: Sendable, Equatable {
    public var size: Int
    public var cells: Int
    /// `cells * cells` random bits, row-major.
    public var bits: [Bool]
    /// Maps an output offset from the centre to a checkerboard offset from the centre: inverse affine, then the 2x zoom.
    public var inverse: (a: Double, b: Double, c: Double, d: Double)
    public var circles: [(x: Double, y: Double, r: Double)]
    public var triangles: [[(x: Double, y: Double)]]

    public static func == (l: NoiseField, r: NoiseField) -> Bool {
        l.size == r.size && l.cells == r.cells && l.bits == r.bits && l.inverse == r.inverse
            && l.circles.elementsEqual(r.circles, by: ==) && l.triangles.elementsEqual(r.triangles) { $0.elementsEqual($1, by: ==) }
    }

    /// Draws a field for a `size` image. Circle radii (50-1000 px at 4000 px) scale with the image.
    public static func draw(size: Int, using rng: inout SplitMix64) -> NoiseField {
        let cells = Int.random(in: 12 ... 24, using: &rng)
        let bits = (0 ..< cells * cells).map { _ in Bool.random(using: &rng) }
        let angle = Double.random(in: -45 ... 45, using: &rng) * .pi / 180
        let scale = Double.random(in: 0.8 ... 1.2, using: &rng)
        let shear = Double.random(in: -50 ... 50, using: &rng) * .pi / 180
        // Forward map A = R(angle) * Shear(shear) * scale; invert and fold in the 2x centre zoom.
        let (cs, sn, sh) = (cos(angle), sin(angle), tan(shear))
        let (a, b, c, d) = (scale * cs, scale * (cs * sh - sn), scale * sn, scale * (sn * sh + cs))
        let det = a * d - b * c
        let inverse = (a: d / det / 2, b: -b / det / 2, c: -c / det / 2, d: a / det / 2)
        let s = Double(size), k = s / 4000
        let circles = (0 ..< Int.random(in: 0 ... 4, using: &rng)).map { _ in
            (x: Double.random(in: 0 ..< s, using: &rng), y: Double.random(in: 0 ..< s, using: &rng),
             r: Double.random(in: 50 * k ... 1000 * k, using: &rng))
        }
        let triangles = (0 ..< Int.random(in: 0 ... 4, using: &rng)).map { _ in
            (0 ..< 3).map { _ in (x: Double.random(in: 0 ..< s, using: &rng), y: Double.random(in: 0 ..< s, using: &rng)) }
        }
        return NoiseField(size: size, cells: cells, bits: bits, inverse: inverse, circles: circles, triangles: triangles)
    }

    /// Renders rows `y ..< y+height`, columns `x ..< x+width` into `out` (row stride `stride`), as 0 or 255.
    public func render(x: Int, y: Int, width: Int, height: Int, into out: UnsafeMutablePointer<UInt8>, stride: Int) {
        let s = Double(size), half = s / 2, n = Double(cells), cellsPerPixel = n / s
        bits.withUnsafeBufferPointer { bits in
            for row in 0 ..< height {
                let line = out + row * stride
                let qy = Double(y + row) + 0.5 - half
                let qx = Double(x) + 0.5 - half
                // Checkerboard through the inverse map, stepping one output pixel at a time.
                var u = inverse.a * qx + inverse.b * qy + half, v = inverse.c * qx + inverse.d * qy + half
                for col in 0 ..< width {
                    var value: UInt8 = 0
                    if u >= 0, v >= 0, u < s, v < s {
                        let cu = min(cells - 1, Int(u * cellsPerPixel)), cv = min(cells - 1, Int(v * cellsPerPixel))
                        value = bits[cv * cells + cu] ? 255 : 0
                    }
                    line[col] = value
                    u += inverse.a
                    v += inverse.c
                }
                // Shapes: XOR each one's span on this row.
                let py = Double(y + row) + 0.5
                for circle in circles {
                    let dy = py - circle.y
                    guard dy * dy < circle.r * circle.r else { continue }
                    let w = (circle.r * circle.r - dy * dy).squareRoot()
                    xorSpan(line, from: circle.x - w, to: circle.x + w, tileX: x, width: width)
                }
                for triangle in triangles {
                    if let (lo, hi) = Self.span(of: triangle, atY: py) { xorSpan(line, from: lo, to: hi, tileX: x, width: width) }
                }
            }
        }
    }

    /// XORs 255 into the pixels whose centres lie in `[from, to)` (image columns), within this tile.
    private func xorSpan(_ line: UnsafeMutablePointer<UInt8>, from: Double, to: Double, tileX: Int, width: Int) {
        let first = max(0, Int((from - 0.5).rounded(.up)) - tileX), last = min(width, Int((to - 0.5).rounded(.up)) - tileX)
        guard first < last else { return }
        for col in first ..< last { line[col] ^= 255 }
    }

    /// The x-interval a triangle covers on horizontal line `y`, nil when it misses the line.
    static func span(of t: [(x: Double, y: Double)], atY y: Double) -> (Double, Double)? {
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0 ..< 3 {
            let p = t[i], q = t[(i + 1) % 3]
            guard (p.y <= y && y < q.y) || (q.y <= y && y < p.y) else { continue }
            let x = p.x + (y - p.y) / (q.y - p.y) * (q.x - p.x)
            lo = min(lo, x)
            hi = max(hi, x)
        }
        return lo <= hi ? (lo, hi) : nil
    }
}
