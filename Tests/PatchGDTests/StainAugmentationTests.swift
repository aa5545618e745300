import Foundation
import Seeded
import SlideIO
import Stain
import TestSupport
import Testing
@testable import PatchGD

/// Pathology augmentation (HED jitter, hue, blur, noise) and stain normalisation in the training and prediction path.
struct PathologyAugmentationTests {
    static func planes(_ a: PatchAugmentation, _ rgb: [UInt8], p: Int) -> [Float] {
        var out = [Float](repeating: 0, count: 3 * p * p)
        rgb.withUnsafeBufferPointer { src in out.withUnsafeMutableBufferPointer { a.apply(rgb: src, p: p, into: $0.baseAddress!) } }
        return out
    }

    @Test func thePresetsDrawDeterministicallyAndKeepTheOlderDraws() {
        let basic = AugmentationPreset.basic.settings, he = AugmentationPreset.he.settings
        #expect(he.hedJitter > 0 && he.hueJitter > 0 && he.blur > 0 && he.noise > 0 && basic.hedJitter == 0)
        for seed in 0 ..< 40 as Range<UInt64> {
            let a = he.draw(seed: seed), b = basic.draw(seed: seed)
            #expect(a == he.draw(seed: seed))
            // The flips, turns and colour factors a seed gave before the H&E augmentations are unchanged.
            #expect(a.flip == b.flip && a.quarterTurns == b.quarterTurns && a.brightness == b.brightness && a.saturation == b.saturation)
            #expect(a.hed != nil && abs(a.hue) <= 0.04 && (0 ... 1).contains(a.blurSigma) && (0 ... 0.02).contains(a.noiseStd))
        }
        #expect(Set((0 ..< 20).map { he.draw(seed: UInt64($0)).noiseSeed }).count == 20)
    }

    @Test func blurKeepsFlatPatchesAndSmoothsEdges() {
        let p = 12
        let flat = [UInt8](repeating: 140, count: 3 * p * p)
        var a = PatchAugmentation()
        a.blurSigma = 1.5
        #expect(Self.planes(a, flat, p: p).allSatisfy { abs($0 - 140 / 255) < 1e-5 })
        // A vertical edge: blurred values step gradually, and the mean is kept.
        let edge = (0 ..< p * p).flatMap { i in [UInt8](repeating: i % p < p / 2 ? 0 : 255, count: 3) }
        let sharp = Self.planes(PatchAugmentation(), edge, p: p), soft = Self.planes(a, edge, p: p)
        #expect(abs(sharp.reduce(0, +) - soft.reduce(0, +)) < 1e-2)
        #expect(soft[p / 2 - 1] > 0.05 && soft[p / 2] < 0.95)
    }

    /// The vectorised blur against the one-pixel-at-a-time reference, on odd sizes and sigmas up to the patch.
    @Test(arguments: [(7, Float(0.4)), (16, 1), (23, 2.5), (5, 3)])
    func blurMatchesItsReference(side: Int, sigma: Float) {
        var rng = SplitMix64(seed: UInt64(side))
        let plane = (0 ..< side * side).map { _ in Float(rng.next() >> 40) / Float(1 << 24) }
        var fast = plane, slow = plane
        fast.withUnsafeMutableBufferPointer { PatchAugmentation.blur($0.baseAddress!, side: side, sigma: sigma) }
        slow.withUnsafeMutableBufferPointer { PatchAugmentation.blurReference($0.baseAddress!, side: side, sigma: sigma) }
        #expect(zip(fast, slow).allSatisfy { abs($0 - $1) < 1e-5 } && fast != plane)
    }

    /// Noise from the quantile table: mean 0 and the asked standard deviation; the table is the normal's quantiles.
    @Test func noiseHasTheAskedSpread() {
        #expect(abs(PatchAugmentation.inverseNormal(0.975) - 1.959963984540054) < 1e-9)
        #expect(abs(PatchAugmentation.inverseNormal(0.001) + 3.090232306167813) < 1e-9)
        let n = 3 * 64 * 64
        var out = [Float](repeating: 0.5, count: n)
        out.withUnsafeMutableBufferPointer { PatchAugmentation.addNoise($0.baseAddress!, count: n, std: 0.05, seed: 11) }
        let mean = out.reduce(0, +) / Float(n), std = (out.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Float(n)).squareRoot()
        #expect(abs(mean - 0.5) < 0.003 && abs(std - 0.05) < 0.003, "mean \(mean), std \(std)")
    }

    @Test func noiseIsSeededAndHueTurnsKeepGrey() {
        let p = 8
        let rgb = (0 ..< 3 * p * p).map { UInt8(60 + $0 % 120) }
        var a = PatchAugmentation()
        a.noiseStd = 0.05
        a.noiseSeed = 3
        let x = Self.planes(a, rgb, p: p)
        #expect(x == Self.planes(a, rgb, p: p))
        a.noiseSeed = 4
        #expect(x != Self.planes(a, rgb, p: p))
        // Grey has no chroma: a hue turn leaves it; a colour changes and keeps its luma.
        var h = PatchAugmentation()
        h.hue = 0.25
        let grey = [UInt8](repeating: 100, count: 3 * p * p)
        #expect(zip(Self.planes(h, grey, p: p), Self.planes(PatchAugmentation(), grey, p: p)).allSatisfy { abs($0 - $1) < 1e-4 })
        let pink = (0 ..< p * p).flatMap { _ -> [UInt8] in [200, 120, 170] }
        let turned = Self.planes(h, pink, p: p), plane = p * p
        let luma = { (v: [Float]) in 0.299 * v[0] + 0.587 * v[plane] + 0.114 * v[2 * plane] }
        #expect(abs(turned[0] - 200 / 255) > 0.05 && abs(luma(turned) - luma(Self.planes(PatchAugmentation(), pink, p: p))) < 0.01)
    }

    @Test func hedJitterChangesTissueColourWithinItsStrength() {
        let p = 8
        let tissue = (0 ..< p * p).flatMap { _ -> [UInt8] in [170, 90, 160] }
        let settings = AugmentationSettings(flips: false, rotations: false, colorJitter: 0, hedJitter: 0.05)
        let base = Self.planes(PatchAugmentation(), tissue, p: p)
        var largest: Float = 0
        for seed in 0 ..< 30 as Range<UInt64> {
            let out = Self.planes(settings.draw(seed: seed), tissue, p: p)
            largest = max(largest, zip(out, base).map { abs($0 - $1) }.max()!)
        }
        #expect(largest > 0.005 && largest < 0.2, "largest change \(largest)")
    }
}

struct StainInTrainingTests {
    /// A 128 x 128 slide of pink and purple (haematoxylin-like) squares with shading, on white.
    static func slide(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("he.tiff")
        try PyramidTIFFWriter.write(to: path, width: 128, height: 128, channels: 3, options: PyramidTIFFOptions(tileSize: 64)) { tile, pixels in
            for row in 0 ..< tile.height { for col in 0 ..< tile.width {
                let x = tile.x + col, y = tile.y + row, o = 3 * (row * tile.tileSize + col)
                let purple = (x / 8 + y / 8) % 3 == 0, tissue = x > 8 && y > 8
                let c: [Int] = !tissue ? [245, 245, 245] : purple ? [110, 70, 150] : [215, 140, 185]
                let shade = tissue ? (x * 7 + y * 3) % 30 : 0
                for k in 0 ..< 3 { pixels[o + k] = UInt8(max(0, c[k] - shade)) }
            } }
        }
        return path
    }

    /// The reader normalises each patch once, before caching: what it serves is the normaliser's output.
    @Test(arguments: [StainTarget.Method.macenko, .reinhard])
    func patchReaderServesNormalisedPatches(method: StainTarget.Method) throws {
        let dir = TemporaryDirectory(), path = try Self.slide(dir)
        let target = method == .macenko ? StainTarget(macenko: .reference)
            : StainTarget(reinhard: Reinhard.Statistics(mean: [50, 40, -20], std: [10, 12, 8]))
        let location = PatchLocation(path: path, level0X: 32, level0Y: 32, level: 0, readSize: 64)
        let plain = PatchReader(patchSize: 64, normalization: .imagenet)
        let stained = PatchReader(patchSize: 64, normalization: .imagenet, stain: StainNormalizer(target))
        let raw = try plain.rgb(location)
        var expected = raw
        #expect(StainNormalizer(target).apply(&expected))
        #expect(try stained.rgb(location) == expected && expected != raw)
        #expect(try stained.rgb(location) == expected && stained.reads == 1)
        #expect(stained.stain!.counts == (1, 0))
    }

    /// gigapatch-stain fit from a picture (PNG) gives what the slide region it shows gives.
    @Test func fitFromAPictureEqualsFitFromTheRegion() throws {
        let dir = TemporaryDirectory(), path = try Self.slide(dir)
        let region = SlideRegion(level0X: 16, level0Y: 16, level: 0, width: 96, height: 96)
        let pixels = try Slide(path: path).readRegion(region).pixels
        try PNG.write(Raster(width: 96, height: 96, channels: 3, pixels: pixels), to: dir.file("ref.png"))
        for method in [StainTarget.Method.macenko, .reinhard] {
            var fromImage = try StainStage.fit(method, source: .image(path: dir.file("ref.png")))
            var fromSlide = try StainStage.fit(method, source: .slide(path: path, region: region))
            #expect(fromImage.fittedFrom == dir.file("ref.png"))
            fromImage.fittedFrom = nil
            fromSlide.fittedFrom = nil
            #expect(fromImage == fromSlide)
        }
        #expect { try StainStage.fit(.macenko, source: .image(path: dir.file("none.png"))) } throws: { "\($0)".contains("none.png") }
    }
}
