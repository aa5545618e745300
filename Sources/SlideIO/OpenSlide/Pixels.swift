/// Conversion of OpenSlide's pixel words to 8-bit RGB.
public enum Pixels {
    /// Converts premultiplied ARGB words (`0xAARRGGBB`, as `openslide_read_region` returns) to RGB.
    ///
    /// Partly transparent pixels are un-premultiplied (`c * 255 / a`, rounded); fully transparent ones
    /// (outside the scanned area or past the slide's edge) become white background.
    /// - Parameters:
    ///   - rgb: output, `3 * argb.count` bytes
    ///   - argb: input words, one per pixel
    @inlinable
    public static func unpremultiply(rgb: UnsafeMutableBufferPointer<UInt8>, argb: UnsafeBufferPointer<UInt32>) {
        precondition(rgb.count >= 3 * argb.count)
        for i in 0 ..< argb.count {
            let word = argb[i]
            let a = word >> 24
            var r = (word >> 16) & 0xFF, g = (word >> 8) & 0xFF, b = word & 0xFF
            if a == 0 {
                r = 255; g = 255; b = 255
            } else if a != 255 {
                r = min(255, (r * 255 + a / 2) / a)
                g = min(255, (g * 255 + a / 2) / a)
                b = min(255, (b * 255 + a / 2) / a)
            }
            rgb[3 * i] = UInt8(truncatingIfNeeded: r)
            rgb[3 * i + 1] = UInt8(truncatingIfNeeded: g)
            rgb[3 * i + 2] = UInt8(truncatingIfNeeded: b)
        }
    }
}
