import Foundation
import SlideIO
@testable import Stain
import TestSupport
import Testing

/// The reference outputs of Fixtures/make_fixture.py (torchstain's Macenko; Reinhard with torchstain's L*a*b* and
/// tissue-only statistics) for patches of a real H&E slide, which the test reads from ../shared/data.
struct StainFixture: Decodable {
    struct Region: Decodable { let x, y, size: Int }
    struct Patch: Decodable {
        let region: Region
        let macenko_hematoxylin, macenko_eosin, macenko_max_concentrations: [Double]
        let macenko_rgb, reinhard_rgb: String
    }
    struct MacenkoTarget: Decodable { let hematoxylin, eosin, max_concentrations: [Double] }
    struct ReinhardTarget: Decodable { let mean, std: [Double] }
    let slide: String
    let target_region: Region
    let macenko_target: MacenkoTarget
    let reinhard_target: ReinhardTarget
    let patches: [Patch]

    static func load() throws -> StainFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/stain-reference.json")
        return try JSONDecoder().decode(StainFixture.self, from: try Data(contentsOf: url))
    }

    static func read(_ slide: Slide, _ r: Region) throws -> [UInt8] {
        try slide.readRegion(SlideRegion(level0X: r.x, level0Y: r.y, level: 0, width: r.size, height: r.size)).pixels
    }
}

/// Degrees between two directions (sign ignored: a stain vector and its negative are one direction).
func degrees(_ a: [Double], _ b: [Double]) -> Double {
    let dot = zip(a, b).map(*).reduce(0, +)
    let na = a.map { $0 * $0 }.reduce(0, +).squareRoot(), nb = b.map { $0 * $0 }.reduce(0, +).squareRoot()
    return acos(min(1, abs(dot) / (na * nb))) * 180 / .pi
}

/// Fraction of bytes within `tolerance` grey levels.
func agreement(_ a: [UInt8], _ b: [UInt8], tolerance: Int = 2) -> Double {
    Double(zip(a, b).filter { abs(Int($0) - Int($1)) <= tolerance }.count) / Double(max(1, a.count))
}

struct StainReferenceTests {
    static let slidePath: String? = (try? StainFixture.load()).flatMap { SharedData.file($0.slide) }

    @Test(.enabled(if: slidePath != nil, "needs ../shared/data/slides (the TCGA H&E slide)"))
    func macenkoMatchesTorchstain() throws {
        let fixture = try StainFixture.load(), slide = try Slide(path: Self.slidePath!)
        let target = try StainFixture.read(slide, fixture.target_region)
        let fitted = try target.withUnsafeBufferPointer { try Macenko.fit(rgb: $0).get() }
        #expect(degrees(fitted.hematoxylin, fixture.macenko_target.hematoxylin) < 1)
        #expect(degrees(fitted.eosin, fixture.macenko_target.eosin) < 1)
        for (mine, theirs) in zip(fitted.maxConcentrations, fixture.macenko_target.max_concentrations) {
            #expect(abs(mine - theirs) / theirs < 0.01, "max concentration \(mine) vs \(theirs)")
        }
        let reference = Macenko.Stains(hematoxylin: fixture.macenko_target.hematoxylin, eosin: fixture.macenko_target.eosin,
                                       maxConcentrations: fixture.macenko_target.max_concentrations)
        for patch in fixture.patches {
            var rgb = try StainFixture.read(slide, patch.region)
            let own = try rgb.withUnsafeBufferPointer { try Macenko.fit(rgb: $0).get() }
            #expect(degrees(own.hematoxylin, patch.macenko_hematoxylin) < 1, "patch \(patch.region.x),\(patch.region.y) H")
            #expect(degrees(own.eosin, patch.macenko_eosin) < 1, "patch \(patch.region.x),\(patch.region.y) E")
            let failure = rgb.withUnsafeMutableBufferPointer { Macenko.normalize($0, to: reference) }
            #expect(failure == nil)
            let expected = [UInt8](Data(base64Encoded: patch.macenko_rgb)!)
            let share = agreement(rgb, expected)
            #expect(share >= 0.99, "patch \(patch.region.x),\(patch.region.y): \(share * 100)% of values within 2 grey levels")
        }
    }

    @Test(.enabled(if: slidePath != nil, "needs ../shared/data/slides (the TCGA H&E slide)"))
    func reinhardMatchesTheReference() throws {
        let fixture = try StainFixture.load(), slide = try Slide(path: Self.slidePath!)
        let target = try StainFixture.read(slide, fixture.target_region)
        let stats = try target.withUnsafeBufferPointer { try Reinhard.statistics(rgb: $0).get() }
        for c in 0 ..< 3 {
            #expect(abs(stats.mean[c] - fixture.reinhard_target.mean[c]) < 0.01, "mean \(c): \(stats.mean[c]) vs \(fixture.reinhard_target.mean[c])")
            #expect(abs(stats.std[c] - fixture.reinhard_target.std[c]) < 0.01, "std \(c): \(stats.std[c]) vs \(fixture.reinhard_target.std[c])")
        }
        let reference = Reinhard.Statistics(mean: fixture.reinhard_target.mean, std: fixture.reinhard_target.std)
        for patch in fixture.patches {
            var rgb = try StainFixture.read(slide, patch.region)
            #expect(rgb.withUnsafeMutableBufferPointer { Reinhard.normalize($0, to: reference) } == nil)
            let share = agreement(rgb, [UInt8](Data(base64Encoded: patch.reinhard_rgb)!))
            #expect(share >= 0.99, "patch \(patch.region.x),\(patch.region.y): \(share * 100)% of values within 2 grey levels")
        }
    }
}

struct StainRobustnessTests {
    /// A patch of `n` pixels of one colour.
    static func flat(_ rgb: (UInt8, UInt8, UInt8), n: Int = 64 * 64) -> [UInt8] { (0 ..< n).flatMap { _ in [rgb.0, rgb.1, rgb.2] } }

    /// Pixels of one stain only: optical densities along one direction with varying concentration.
    static func singleStain(n: Int = 64 * 64) -> [UInt8] {
        let direction = [0.65, 0.70, 0.29]
        return (0 ..< n).flatMap { i -> [UInt8] in
            let c = 0.3 + 1.2 * Double(i % 97) / 97
            return direction.map { UInt8(max(0, min(255, 240 * exp(-c * $0) - 1))) }
        }
    }

    static let cases = ["blank white", "one flat pink colour", "haematoxylin only"]

    @Test(arguments: cases)
    func patchesWithoutTwoStainsAreLeftAsTheyWere(name: String) {
        let patch = name == "blank white" ? Self.flat((255, 255, 255)) : name == "one flat pink colour" ? Self.flat((200, 120, 170)) : Self.singleStain()
        let macenko = StainTarget(macenko: .reference), reinhard = StainTarget(reinhard: Reinhard.Statistics(mean: [60, 30, -10], std: [12, 8, 5]))
        for target in [macenko, reinhard] {
            let normalizer = StainNormalizer(target)
            var pixels = patch
            let applied = normalizer.apply(&pixels)
            if name == "haematoxylin only" && target.method == .reinhard {
                // Reinhard needs no second stain: a real spread of colours is normalised.
                #expect(applied, "\(name), reinhard")
            } else {
                #expect(!applied && pixels == patch, "\(name), \(target.method): must be left as it was")
                #expect(normalizer.counts == (0, 1))
            }
        }
    }

    @Test func percentileIsNumPysLinearInterpolation() {
        var rng = SystemRandomNumberGenerator()
        for n in [1, 2, 3, 10, 101, 1000] {
            let values = (0 ..< n).map { _ in Float(Int.random(in: 0 ..< 20, using: &rng)) / 4 }
            let sorted = values.sorted()
            for q in [0.0, 1, 37.5, 50, 99, 100] {
                let position = Double(n - 1) * q / 100, lo = Int(position), f = position - Double(lo)
                let want = Double(sorted[lo]) + (lo + 1 < n ? f * Double(sorted[lo + 1] - sorted[lo]) : 0)
                var copy = values
                let got = copy.withUnsafeMutableBufferPointer { Percentile.linear($0.baseAddress!, count: n, q) }
                #expect(abs(got - want) < 1e-6, "n \(n) q \(q): \(got) vs \(want)")
            }
        }
    }

    @Test func eigenDecompositionReconstructsTheMatrix() {
        let m: [[Double]] = [[2, 0.5, 0.1], [0.5, 1, 0.3], [0.1, 0.3, 0.5]]
        let (values, v) = SymmetricEigen.decompose(m)
        #expect(values == values.sorted())
        for i in 0 ..< 3 { for j in 0 ..< 3 {
            let r = (0 ..< 3).reduce(0.0) { $0 + v[i][$1] * values[$1] * v[j][$1] }
            #expect(abs(r - m[i][j]) < 1e-12)
        } }
    }

    @Test func hedJitterIsTheIdentityWithoutPerturbationAndScalesUniformly() {
        let identity = HEDJitter(alpha: SIMD3(1, 1, 1), beta: SIMD3(0, 0, 0))
        for v in stride(from: 1, through: 255, by: 17) {
            let p = identity.apply(UInt8(v), UInt8(255 - v / 2), UInt8(v / 3 + 1))
            #expect(abs(p[0] * 255 - Float(v)) < 0.01 && abs(p[1] * 255 - Float(255 - v / 2)) < 0.01 && abs(p[2] * 255 - Float(v / 3 + 1)) < 0.01)
        }
        // The same alpha for every stain scales optical density: I' = I^alpha.
        let darker = HEDJitter(alpha: SIMD3(1.5, 1.5, 1.5), beta: SIMD3(0, 0, 0))
        let p = darker.apply(128, 64, 200)
        #expect(abs(p[0] - powf(128 / 255, 1.5)) < 1e-4 && abs(p[1] - powf(64 / 255, 1.5)) < 1e-4 && abs(p[2] - powf(200 / 255, 1.5)) < 1e-4)
        // More haematoxylin darkens red most (its OD vector's largest share after green is red, against eosin's).
        let moreH = HEDJitter(alpha: SIMD3(1, 1, 1), beta: SIMD3(0.3, 0, 0)).apply(220, 180, 200)
        #expect(moreH[0] < 220 / 255 && moreH[1] < 180 / 255 && moreH[2] < 200 / 255)
    }

    @Test func hedJitterTableAgreesWithExpf() {
        var worst: Float = 0
        for (alpha, beta) in [(SIMD3(1.05, 0.95, 1.0), SIMD3(0.05, -0.05, 0.02)), (SIMD3(0.8, 1.2, 1.1), SIMD3(-0.2, 0.2, -0.1))] {
            let jitter = HEDJitter(alpha: alpha, beta: beta)
            for r in stride(from: 0, through: 255, by: 9) { for g in stride(from: 0, through: 255, by: 11) { for b in stride(from: 0, through: 255, by: 13) {
                let fast = jitter.apply(UInt8(r), UInt8(g), UInt8(b)), slow = jitter.applyReference(UInt8(r), UInt8(g), UInt8(b))
                worst = max(worst, (fast - slow).max(), (slow - fast).max())
            } } }
        }
        #expect(worst * 255 < 0.01, "off by \(worst * 255) grey levels")
    }

    @Test func targetFilesRoundTripAndBadOnesSayWhy() throws {
        let target = StainTarget(macenko: .reference, fittedFrom: "test", tissuePixels: 10)
        #expect(try StainTarget.decode(try target.encoded()) == target)
        let reinhard = StainTarget(reinhard: Reinhard.Statistics(mean: [1, 2, 3], std: [1, 1, 1]))
        #expect(try StainTarget.decode(try reinhard.encoded()) == reinhard)
        #expect(throws: StainError.self) { try StainTarget.decode(Data("{}".utf8)) }
        var broken = target
        broken.macenko!.maxConcentrations = [1, 0]
        #expect { try StainTarget.decode(try broken.encoded()) } throws: { "\($0)".contains("max_concentrations") }
        broken = reinhard
        broken.reinhard!.std = [1, .nan, 1]
        #expect(broken.problem() != nil)
        #expect { try StainTarget.decode(Data(#"{"format":"gigapatch-stain-target","version":1,"method":"reinhard"}"#.utf8)) } throws: {
            "\($0)".contains("without its 'reinhard'")
        }
    }
}

/// The table-driven colour conversions against their references without tables.
struct ColorConversionTests {
    @Test func labTablesAgreeWithTheFormulas() {
        let lab = LabConversion.shared
        var worstLab: Float = 0, worstRGB: Float = 0
        for r in stride(from: 0, through: 255, by: 5) { for g in stride(from: 0, through: 255, by: 7) { for b in stride(from: 0, through: 255, by: 3) {
            let fast = lab.lab(UInt8(r), UInt8(g), UInt8(b)), slow = lab.labReference(UInt8(r), UInt8(g), UInt8(b))
            worstLab = max(worstLab, (fast - slow).max(), (slow - fast).max())
            let shifted = slow * SIMD3(0.9, 1.1, 1.05) + SIMD3(3, -2, 1)
            let back = lab.rgb(shifted), backSlow = lab.rgbReference(shifted)
            worstRGB = max(worstRGB, (back - backSlow).max(), (backSlow - back).max())
        } } }
        #expect(worstLab < 0.01, "L*a*b* off by \(worstLab)")
        #expect(worstRGB * 255 < 0.05, "RGB off by \(worstRGB * 255) grey levels")
    }
}

