/// 8-wide SIMD over raw float buffers: one AVX register per vector (see Package.swift's target CPU).
/// The single home of the load, store and clamp every vectorised kernel uses.
public enum SIMDLoop {
    public typealias Vector = SIMD8<Float>

    @inlinable @inline(__always)
    public static func load(_ p: UnsafePointer<Float>) -> Vector { UnsafeRawPointer(p).loadUnaligned(as: Vector.self) }

    @inlinable @inline(__always)
    public static func store(_ v: Vector, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vector.self) }

    /// min(max(v, lo), hi) lane by lane, as compare-and-replace (inlines; the generic pointwise functions do not).
    @inlinable @inline(__always)
    public static func clamp(_ v: Vector, _ lo: Vector, _ hi: Vector) -> Vector {
        let low = v.replacing(with: lo, where: v .< lo)
        return low.replacing(with: hi, where: low .> hi)
    }

    /// out[i] = f(a[i]) over `range`.
    @inlinable @inline(__always)
    public static func map(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                           _ f: (Vector) -> Vector) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            store(f(load(a + i)), out + i)
            i += 8
        }
        while i < range.upperBound {
            var v = Vector(repeating: 0)
            v[0] = a[i]
            out[i] = f(v)[0]
            i += 1
        }
    }

    /// out[i] = f(a[i], b[i]) over `range`.
    @inlinable @inline(__always)
    public static func zip(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                           _ f: (Vector, Vector) -> Vector) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            store(f(load(a + i), load(b + i)), out + i)
            i += 8
        }
        while i < range.upperBound {
            var va = Vector(repeating: 0), vb = Vector(repeating: 0)
            va[0] = a[i]; vb[0] = b[i]
            out[i] = f(va, vb)[0]
            i += 1
        }
    }
}
