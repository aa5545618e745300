/// NumPy's default percentile (linear interpolation between the two nearest ranks), by selection rather than a full
/// sort: two partial partitions, O(n) expected. The values are reordered.
enum Percentile {
    /// The q-th percentile (0...100) of `values[0 ..< count]`; `count` must be positive.
    static func linear(_ values: UnsafeMutablePointer<Float>, count n: Int, _ q: Double) -> Double {
        precondition(n > 0, "percentile of no values")
        let position = Double(n - 1) * q / 100
        let lo = Int(position.rounded(.down)), fraction = position - Double(lo)
        let low = Double(select(values, count: n, k: lo))
        guard fraction > 0, lo + 1 < n else { return low }
        // After selecting rank lo, every value above index lo is >= it: the next rank is their minimum.
        var next = values[lo + 1]
        for i in lo + 2 ..< n where values[i] < next { next = values[i] }
        return low + fraction * (Double(next) - low)
    }

    /// Reorders `values` so that index k holds the k-th smallest, smaller ones before it and larger ones after it.
    static func select(_ a: UnsafeMutablePointer<Float>, count n: Int, k: Int) -> Float {
        var lo = 0, hi = n - 1
        while lo < hi {
            // Median of three as the pivot keeps sorted and constant runs linear.
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return a[k] }
        }
        return a[k]
    }
}

extension UnsafeMutablePointer where Pointee == Float {
    @inline(__always) func swapAt(_ i: Int, _ j: Int) { let t = self[i]; self[i] = self[j]; self[j] = t }
}
