/// A 0/1 image (mask) with the box-filter and connected-component operations tissue detection needs.
public struct BinaryImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Row-major, 0 or 1.
    public var bits: [UInt8]

    public init(width: Int, height: Int, bits: [UInt8]) {
        precondition(bits.count == width * height)
        self.width = width
        self.height = height
        self.bits = bits
    }

    public init(width: Int, height: Int, value: UInt8 = 0) {
        self.init(width: width, height: height, bits: [UInt8](repeating: value, count: width * height))
    }

    /// Number of set pixels.
    public var count: Int { bits.reduce(0) { $0 + Int($1) } }

    /// Summed-area table with a zero first row and column: `(width + 1) * (height + 1)` entries.
    public func integral() -> [Int32] {
        let w1 = width + 1
        var table = [Int32](repeating: 0, count: w1 * (height + 1))
        bits.withUnsafeBufferPointer { b in
            table.withUnsafeMutableBufferPointer { t in
                for y in 0 ..< height {
                    var row: Int32 = 0
                    for x in 0 ..< width {
                        row += Int32(b[y * width + x])
                        t[(y + 1) * w1 + x + 1] = t[y * w1 + x + 1] + row
                    }
                }
            }
        }
        return table
    }

    /// Applies `keep(setPixelsInWindow, pixelsInWindow)` over a `k` x `k` window (clipped at the borders) at every pixel.
    public func boxFilter(kernel k: Int, keep: (Int32, Int32) -> Bool) -> BinaryImage {
        let r = k / 2, w1 = width + 1
        let table = integral()
        var out = BinaryImage(width: width, height: height)
        table.withUnsafeBufferPointer { t in
            out.bits.withUnsafeMutableBufferPointer { o in
                for y in 0 ..< height {
                    let y0 = max(0, y - r), y1 = min(height, y + r + 1)
                    for x in 0 ..< width {
                        let x0 = max(0, x - r), x1 = min(width, x + r + 1)
                        let sum = t[y1 * w1 + x1] - t[y0 * w1 + x1] - t[y1 * w1 + x0] + t[y0 * w1 + x0]
                        o[y * width + x] = keep(sum, Int32((y1 - y0) * (x1 - x0))) ? 1 : 0
                    }
                }
            }
        }
        return out
    }

    /// Majority vote in a `k` x `k` window: for a thresholded image this equals thresholding the median-blurred image.
    public func majority(kernel k: Int) -> BinaryImage { boxFilter(kernel: k) { 2 * $0 > $1 } }
    /// Square dilation: set where any pixel of the window is set.
    public func dilated(kernel k: Int) -> BinaryImage { boxFilter(kernel: k) { sum, _ in sum > 0 } }
    /// Square erosion: set where every pixel of the window (inside the image) is set.
    public func eroded(kernel k: Int) -> BinaryImage { boxFilter(kernel: k) { $0 == $1 } }
    /// Closing (dilate, then erode): bridges small gaps.
    public func closed(kernel k: Int) -> BinaryImage { dilated(kernel: k).eroded(kernel: k) }
    /// Opening (erode, then dilate): removes specks thinner than the kernel.
    public func opened(kernel k: Int) -> BinaryImage { eroded(kernel: k).dilated(kernel: k) }

    /// Connected components of pixels equal to `value` (8-connected for 1, 4-connected for 0).
    ///
    /// - Returns: a label per pixel (-1 for other pixels), and for each component its size and whether it touches the border.
    public func components(of value: UInt8) -> (labels: [Int32], sizes: [Int], touchesBorder: [Bool]) {
        var labels = [Int32](repeating: -1, count: width * height)
        var sizes: [Int] = [], border: [Bool] = []
        var stack: [Int] = []
        let neighbours8 = [(-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1)]
        let neighbours4 = [(0, -1), (-1, 0), (1, 0), (0, 1)]
        let neighbours = value == 1 ? neighbours8 : neighbours4
        bits.withUnsafeBufferPointer { b in
            labels.withUnsafeMutableBufferPointer { l in
                for start in 0 ..< width * height where b[start] == value && l[start] < 0 {
                    let label = Int32(sizes.count)
                    var size = 0, touches = false
                    l[start] = label
                    stack.append(start)
                    while let p = stack.popLast() {
                        size += 1
                        let x = p % width, y = p / width
                        if x == 0 || y == 0 || x == width - 1 || y == height - 1 { touches = true }
                        for (dx, dy) in neighbours {
                            let nx = x + dx, ny = y + dy
                            guard nx >= 0, ny >= 0, nx < width, ny < height else { continue }
                            let q = ny * width + nx
                            if b[q] == value && l[q] < 0 {
                                l[q] = label
                                stack.append(q)
                            }
                        }
                    }
                    sizes.append(size)
                    border.append(touches)
                }
            }
        }
        return (labels, sizes, border)
    }

    /// Sets background regions that do not touch the border and are smaller than `maxArea` pixels (holes in tissue).
    public func holesFilled(maxArea: Double) -> BinaryImage {
        let (labels, sizes, border) = components(of: 0)
        var out = self
        for i in 0 ..< bits.count where labels[i] >= 0 {
            let c = Int(labels[i])
            if !border[c] && Double(sizes[c]) < maxArea { out.bits[i] = 1 }
        }
        return out
    }

    /// Clears foreground regions smaller than `minArea` pixels.
    public func smallRegionsRemoved(minArea: Double) -> BinaryImage {
        let (labels, sizes, _) = components(of: 1)
        var out = self
        for i in 0 ..< bits.count where labels[i] >= 0 && Double(sizes[Int(labels[i])]) < minArea { out.bits[i] = 0 }
        return out
    }
}
