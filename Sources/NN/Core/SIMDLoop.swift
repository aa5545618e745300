/// Elementwise loops over raw buffers in 8-wide SIMD steps with a scalar tail.
public enum SIMDLoop {
    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// out[i] = f(a[i]) over `range`.
    @inlinable @inline(__always)
    public static func map(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                           _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            UnsafeMutableRawPointer(out + i).storeBytes(of: f(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)), as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            var v = SIMD8<Float>(repeating: 0)
            v[0] = a[i]
            out[i] = f(v)[0]
            i += 1
        }
    }

    /// out[i] = f(a[i], b[i]) over `range`.
    @inlinable @inline(__always)
    public static func zip(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                           _ f: (SIMD8<Float>, SIMD8<Float>) -> SIMD8<Float>) {
        var i = range.lowerBound
        while i + 8 <= range.upperBound {
            let va = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self), vb = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: f(va, vb), as: SIMD8<Float>.self)
            i += 8
        }
        while i < range.upperBound {
            var va = SIMD8<Float>(repeating: 0), vb = SIMD8<Float>(repeating: 0)
            va[0] = a[i]; vb[0] = b[i]
            out[i] = f(va, vb)[0]
            i += 1
        }
    }
}
