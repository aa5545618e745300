import Foundation
import Manifests
import SlideIO
import TestSupport
import Testing
@testable import UltraMNIST

struct GeneratorTests {
    static func job(seed: UInt64 = 5, noise: Bool = false, size: Int = 512) -> UltraMNISTJob {
        var recipe = UltraMNISTRecipe.patchgd
        recipe.noise = noise
        recipe.size = size
        return UltraMNISTJob(recipe: recipe, counts: SplitCounts(train: 8, val: 3, test: 3, totals: true), seed: seed)
    }

    static func files(in directory: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: directory).sorted() {
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: "\(directory)/\(name)", isDirectory: &isDir)
            if !isDir.boolValue { result[name] = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)")) }
        }
        return result
    }

    @Test func sameSeedGivesByteIdenticalFilesWhateverTheWorkers() throws {
        let mnist = TemporaryDirectory(), a = TemporaryDirectory(), b = TemporaryDirectory(), c = TemporaryDirectory()
        try FakeMNIST.write(to: mnist.path)
        try UltraMNISTGenerator.run(job: Self.job(noise: true), mnistDirectory: mnist.path, outDirectory: a.path, workers: 1) { _ in }
        try UltraMNISTGenerator.run(job: Self.job(noise: true), mnistDirectory: mnist.path, outDirectory: b.path, workers: 2) { _ in }
        try UltraMNISTGenerator.run(job: Self.job(seed: 6, noise: true), mnistDirectory: mnist.path, outDirectory: c.path, workers: 2) { _ in }
        let (fa, fb, fc) = (try Self.files(in: a.path), try Self.files(in: b.path), try Self.files(in: c.path))
        #expect(fa.count == 14 + 2)   // images, manifest.csv, ultramnist.json
        #expect(fa == fb)
        #expect(fa["manifest.csv"] != fc["manifest.csv"])
    }

    /// Re-reading the manifest: label = digit sum, boxes and digits agree, every slide opens in OpenSlide at the right size.
    @Test func manifestAndImagesReadBack() throws {
        let mnist = TemporaryDirectory(), out = TemporaryDirectory()
        try FakeMNIST.write(to: mnist.path)
        let job = Self.job(noise: false, size: 600)
        try UltraMNISTGenerator.run(job: job, mnistDirectory: mnist.path, outDirectory: out.path, workers: 2) { _ in }
        let table = try CSVTable(text: String(contentsOfFile: out.file("manifest.csv"), encoding: .utf8))
        #expect(Array(table.header.prefix(3)) == ["slide", "label", "split"])
        #expect(table.rows.count == 14)
        let col = { (name: String) in try #require(table.column(name)) }
        for row in table.rows {
            let f = row.fields
            let digits = try f[col("digits")].split(separator: ";").map { try #require(Int($0)) }
            let boxes = try f[col("boxes")].split(separator: ";").map { try $0.split(separator: ",").map { try #require(Int($0)) } }
            #expect(digits.reduce(0, +) == Int(try f[col("label")]))
            #expect(boxes.count == digits.count && boxes.allSatisfy { $0.count == 4 && $0[2] == $0[3] })
            let slide = try Slide(path: out.file(try f[col("slide")]))
            #expect(slide.dimensions == (600, 600))
            #expect(slide.vendor == "generic-tiff")
            // Centre of each digit's fake glyph (value 100 + 15 * digit), through OpenSlide.
            for (digit, box) in zip(digits, boxes) {
                let cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2
                let read = try slide.readRegion(SlideRegion(level0X: cx, level0Y: cy, level: 0, width: 1, height: 1))
                #expect(read.pixels == [UInt8](repeating: UInt8(100 + 15 * digit), count: 3), "digit \(digit) at \(box)")
            }
        }
    }

    /// A pixel inside a digit's box differs from the noise-only rendering (the digit is XOR-ed onto the noise).
    @Test func digitsChangeTheNoiseBackground() throws {
        let (train, test) = LayoutTests.fakeSets()
        let job = UltraMNISTJob(recipe: .kaggle, counts: SplitCounts(train: 1, val: 0, test: 0, totals: true), seed: 2)
        let layout = try #require(try UltraMNISTGenerator.layouts(job: job, train: train, test: test).first)
        let renderer = UltraMNISTRenderer(mnist: train)
        for digit in layout.digits where digit.side >= 28 {
            let (x, y) = (digit.x + digit.side / 2, digit.y + digit.side / 2)
            var with = [UInt8](repeating: 0, count: 1), without = [UInt8](repeating: 0, count: 1)
            with.withUnsafeMutableBufferPointer { renderer.render(layout, x: x, y: y, width: 1, height: 1, into: $0.baseAddress!, stride: 1) }
            without.withUnsafeMutableBufferPointer { renderer.render(layout, x: x, y: y, width: 1, height: 1, into: $0.baseAddress!, stride: 1, digits: false) }
            #expect(without[0] == 0 || without[0] == 255)
            #expect(with[0] == without[0] ^ UInt8(100 + 15 * digit.value))
        }
    }

    /// Rendering by tiles equals rendering the image in one piece (tiles are independent).
    @Test func tilesAgreeWithWholeImage() throws {
        let (train, test) = LayoutTests.fakeSets()
        var recipe = UltraMNISTRecipe.kaggle
        recipe.size = 700
        recipe.maxScale = 10
        recipe.scaleWeights = UltraMNISTRecipe.vShape(descendingFrom: 5, count: 10)
        let job = UltraMNISTJob(recipe: recipe, counts: SplitCounts(train: 1, val: 0, test: 0, totals: true), seed: 9)
        let layout = try #require(try UltraMNISTGenerator.layouts(job: job, train: train, test: test).first)
        let renderer = UltraMNISTRenderer(mnist: train)
        var whole = [UInt8](repeating: 0, count: 700 * 700)
        whole.withUnsafeMutableBufferPointer { renderer.render(layout, x: 0, y: 0, width: 700, height: 700, into: $0.baseAddress!, stride: 700) }
        var tiled = [UInt8](repeating: 0, count: 700 * 700)
        tiled.withUnsafeMutableBufferPointer { buf in
            for ty in stride(from: 0, to: 700, by: 128) {
                for tx in stride(from: 0, to: 700, by: 128) {
                    renderer.render(layout, x: tx, y: ty, width: min(128, 700 - tx), height: min(128, 700 - ty),
                                    into: buf.baseAddress! + ty * 700 + tx, stride: 700)
                }
            }
        }
        #expect(whole == tiled)
        #expect(Set(whole).count > 2) // noise (0/255) plus digit values
    }

    @Test func interruptedRunResumesAndChangedJobStartsOver() throws {
        let mnist = TemporaryDirectory(), out = TemporaryDirectory()
        try FakeMNIST.write(to: mnist.path)
        try UltraMNISTGenerator.run(job: Self.job(), mnistDirectory: mnist.path, outDirectory: out.path, workers: 2) { _ in }
        let before = try Self.files(in: out.path)
        try FileManager.default.removeItem(atPath: out.file("images/train-000003.tiff"))
        let skipped = SkipCounter()
        try UltraMNISTGenerator.run(job: Self.job(), mnistDirectory: mnist.path, outDirectory: out.path, workers: 2) { skipped.record($0.skipped) }
        #expect(skipped.value == 13)
        #expect(try Self.files(in: out.path) == before)
        let again = SkipCounter()
        try UltraMNISTGenerator.run(job: Self.job(seed: 99), mnistDirectory: mnist.path, outDirectory: out.path, workers: 2) { again.record($0.skipped) }
        #expect(again.value == 0)
    }

    @Test func badSettingsAndMissingMNISTFailClearly() throws {
        let out = TemporaryDirectory()
        var job = Self.job()
        job.recipe.classes = 60
        #expect(throws: UltraMNISTError.self) { try UltraMNISTGenerator.run(job: job, mnistDirectory: out.path, outDirectory: out.path, workers: 1) { _ in } }
        #expect(throws: MNISTError.self) { try UltraMNISTGenerator.run(job: Self.job(), mnistDirectory: out.file("nope"), outDirectory: out.path, workers: 1) { _ in } }
    }
}

final class SkipCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var maximum = 0
    var value: Int { lock.withLock { maximum } }
    func record(_ skipped: Int) { lock.withLock { maximum = max(maximum, skipped) } }
}
