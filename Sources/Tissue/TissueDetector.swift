import SlideIO

/// How tissue is told from background; every area is in square microns when the slide's mpp is known.
public struct TissueParameters: Sendable, Equatable, Codable {
    /// `otsu`: HSV saturation (brightness on dark backgrounds) thresholded by Otsu's method; `none`: everything is tissue.
    public var method: String = "otsu"
    /// Side of the median blur applied before thresholding (odd).
    public var medianKernel: Int = 7
    /// Lowest saturation (0-255) that can count as tissue whatever Otsu says, so a blank slide finds nothing.
    public var minSaturation: Int = 20
    /// Side of the square used for morphological closing, then opening (odd; 1 disables).
    public var morphologyKernel: Int = 5
    /// Tissue regions smaller than this are removed: square microns (mpp known).
    public var minRegionAreaMicrons: Double = 20_000
    /// Holes inside tissue smaller than this are filled: square microns (mpp known).
    public var maxHoleAreaMicrons: Double = 10_000
    /// The same two areas in level-0 square pixels, used when mpp is unknown.
    public var minRegionAreaPixels: Double = 80_000
    public var maxHoleAreaPixels: Double = 40_000

    public init() {}

    /// Decodes from the defaults up, so a preset names only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var p = TissueParameters()
        p.method = try c.decodeIfPresent(String.self, forKey: .method) ?? p.method
        p.medianKernel = try c.decodeIfPresent(Int.self, forKey: .medianKernel) ?? p.medianKernel
        p.minSaturation = try c.decodeIfPresent(Int.self, forKey: .minSaturation) ?? p.minSaturation
        p.morphologyKernel = try c.decodeIfPresent(Int.self, forKey: .morphologyKernel) ?? p.morphologyKernel
        p.minRegionAreaMicrons = try c.decodeIfPresent(Double.self, forKey: .minRegionAreaMicrons) ?? p.minRegionAreaMicrons
        p.maxHoleAreaMicrons = try c.decodeIfPresent(Double.self, forKey: .maxHoleAreaMicrons) ?? p.maxHoleAreaMicrons
        p.minRegionAreaPixels = try c.decodeIfPresent(Double.self, forKey: .minRegionAreaPixels) ?? p.minRegionAreaPixels
        p.maxHoleAreaPixels = try c.decodeIfPresent(Double.self, forKey: .maxHoleAreaPixels) ?? p.maxHoleAreaPixels
        self = p
    }

    enum CodingKeys: String, CodingKey {
        case method, medianKernel = "median_kernel", minSaturation = "min_saturation", morphologyKernel = "morphology_kernel"
        case minRegionAreaMicrons = "min_region_area_um2", maxHoleAreaMicrons = "max_hole_area_um2"
        case minRegionAreaPixels = "min_region_area_px", maxHoleAreaPixels = "max_hole_area_px"
    }
}

/// A tissue mask at thumbnail resolution, with what produced it.
public struct TissueMask: Sendable {
    /// 1 where tissue was found; one pixel covers `downsampleX` x `downsampleY` level-0 pixels.
    public var mask: BinaryImage
    /// The RGB thumbnail the mask was computed from (same size).
    public var thumbnail: Raster
    public var downsampleX: Double
    public var downsampleY: Double
    /// Saturation or brightness threshold used (0-255), nil for `method: none`.
    public var threshold: Int?
    /// True when the background was dark (fluorescence) and brightness was thresholded instead of saturation.
    public var darkBackground: Bool
    /// Fraction of the slide covered by the mask.
    public var tissueFraction: Double { Double(mask.count) / Double(max(1, mask.bits.count)) }

    /// One line for logs: what was found and how.
    public var summary: String {
        guard let threshold else { return "tissue detection off: every patch kept" }
        let what = darkBackground ? "dark background (fluorescence?): mean brightness" : "saturation"
        return "\(what) threshold \(threshold), tissue covers \(String(format: "%.1f", 100 * tissueFraction))% of the slide"
    }
}

/// Finds tissue on a slide thumbnail: HSV saturation, median blur, Otsu, closing/opening, holes filled, small regions removed.
public enum TissueDetector {
    /// Detects tissue in `thumbnail`, whose pixels each cover `downsampleX` x `downsampleY` level-0 pixels.
    ///
    /// - Parameter micronsPerPixel: level-0 mpp when known; areas are then taken in square microns.
    public static func detect(thumbnail: Raster, downsampleX: Double, downsampleY: Double, micronsPerPixel: (Double, Double)?,
                              parameters p: TissueParameters) -> TissueMask {
        let w = thumbnail.width, h = thumbnail.height
        guard p.method != "none" else {
            return TissueMask(mask: BinaryImage(width: w, height: h, value: 1), thumbnail: thumbnail,
                              downsampleX: downsampleX, downsampleY: downsampleY, threshold: nil, darkBackground: false)
        }
        let (saturation, value) = hsv(thumbnail)
        let dark = borderMedian(value, width: w, height: h) < 100
        // Fluorescence: tissue is where bright nuclei are dense, so brightness is averaged over about 50 microns first.
        let window = micronsPerPixel.map { Int((50 / ($0.0 * downsampleX)).rounded()) } ?? min(w, h) / 50
        let channel = dark ? boxMean(value, width: w, height: h, kernel: max(3, window | 1)) : saturation
        let threshold = max(p.minSaturation, otsu(channel))
        var mask = BinaryImage(width: w, height: h, bits: channel.map { Int($0) > threshold ? 1 : 0 })
        if p.medianKernel > 1 { mask = mask.majority(kernel: p.medianKernel) }
        if p.morphologyKernel > 1 { mask = mask.closed(kernel: p.morphologyKernel).opened(kernel: p.morphologyKernel) }
        // Areas: square microns through mpp when known, else level-0 square pixels; then mask pixels.
        let pixelArea: Double, minRegion: Double, maxHole: Double
        if let (mx, my) = micronsPerPixel {
            pixelArea = mx * downsampleX * my * downsampleY
            (minRegion, maxHole) = (p.minRegionAreaMicrons, p.maxHoleAreaMicrons)
        } else {
            pixelArea = downsampleX * downsampleY
            (minRegion, maxHole) = (p.minRegionAreaPixels, p.maxHoleAreaPixels)
        }
        mask = mask.holesFilled(maxArea: maxHole / pixelArea).smallRegionsRemoved(minArea: minRegion / pixelArea)
        return TissueMask(mask: mask, thumbnail: thumbnail, downsampleX: downsampleX, downsampleY: downsampleY,
                          threshold: threshold, darkBackground: dark)
    }

    /// HSV saturation and value, 0-255, per pixel.
    public static func hsv(_ raster: Raster) -> (saturation: [UInt8], value: [UInt8]) {
        let n = raster.width * raster.height
        var s = [UInt8](repeating: 0, count: n), v = [UInt8](repeating: 0, count: n)
        let rgb = raster.channels == 3 ? raster : raster.converted(toChannels: 3)
        rgb.pixels.withUnsafeBufferPointer { p in
            for i in 0 ..< n {
                let r = Int(p[3 * i]), g = Int(p[3 * i + 1]), b = Int(p[3 * i + 2])
                let hi = max(r, g, b), lo = min(r, g, b)
                v[i] = UInt8(hi)
                s[i] = hi == 0 ? 0 : UInt8((255 * (hi - lo) + hi / 2) / hi)
            }
        }
        return (s, v)
    }

    /// Mean over a `kernel` x `kernel` window (clipped at the borders), through a summed-area table.
    static func boxMean(_ values: [UInt8], width: Int, height: Int, kernel: Int) -> [UInt8] {
        let w1 = width + 1, r = kernel / 2
        var table = [Int](repeating: 0, count: w1 * (height + 1))
        for y in 0 ..< height {
            var row = 0
            for x in 0 ..< width {
                row += Int(values[y * width + x])
                table[(y + 1) * w1 + x + 1] = table[y * w1 + x + 1] + row
            }
        }
        var out = [UInt8](repeating: 0, count: values.count)
        for y in 0 ..< height {
            let y0 = max(0, y - r), y1 = min(height, y + r + 1)
            for x in 0 ..< width {
                let x0 = max(0, x - r), x1 = min(width, x + r + 1)
                let sum = table[y1 * w1 + x1] - table[y0 * w1 + x1] - table[y1 * w1 + x0] + table[y0 * w1 + x0]
                out[y * width + x] = UInt8(sum / ((y1 - y0) * (x1 - x0)))
            }
        }
        return out
    }

    /// Otsu's threshold: the level maximising the between-class variance of the histogram (values above it are foreground).
    public static func otsu(_ values: [UInt8]) -> Int {
        var histogram = [Int](repeating: 0, count: 256)
        for v in values { histogram[Int(v)] += 1 }
        let total = Double(values.count)
        let sumAll = histogram.enumerated().reduce(0.0) { $0 + Double($1.offset * $1.element) }
        var weightBelow = 0.0, sumBelow = 0.0, best = 0.0, threshold = 0
        for t in 0 ..< 256 {
            weightBelow += Double(histogram[t])
            let weightAbove = total - weightBelow
            if weightBelow == 0 { continue }
            if weightAbove == 0 { break }
            sumBelow += Double(t * histogram[t])
            let meanBelow = sumBelow / weightBelow, meanAbove = (sumAll - sumBelow) / weightAbove
            let between = weightBelow * weightAbove * (meanBelow - meanAbove) * (meanBelow - meanAbove)
            if between > best {
                best = between
                threshold = t
            }
        }
        return threshold
    }

    /// Median of the values on the outer frame (2% of each side, at least one pixel): the background's level.
    static func borderMedian(_ values: [UInt8], width: Int, height: Int) -> Int {
        let fx = max(1, width / 50), fy = max(1, height / 50)
        var histogram = [Int](repeating: 0, count: 256), count = 0
        for y in 0 ..< height {
            for x in 0 ..< width where x < fx || y < fy || x >= width - fx || y >= height - fy {
                histogram[Int(values[y * width + x])] += 1
                count += 1
            }
        }
        var seen = 0
        for (v, n) in histogram.enumerated() {
            seen += n
            if 2 * seen >= count { return v }
        }
        return 255
    }
}
