import Foundation
import Testing

/// With a fixed k, only Z and the head's activations grow with the image, never the backbone's: a PatchGD step on a
/// 8192 x 8192 image (4096 patches) peaks within a few tens of MiB of one on a 1024 x 1024 image (64 patches).
/// Each size runs in its own `gigapatch-bench patchgd` process so each peak is its own.
struct MemoryTests {
    static var binary: String? {
        let path = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("gigapatch-bench").path
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    /// Runs `gigapatch-bench ARGUMENTS` in its own process and returns its JSON line.
    static func bench(_ arguments: [String]) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(binary, "build gigapatch-bench first (scripts/test does)"))
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func peak(size: Int) throws -> (peak: Double, zMB: Double) {
        let line = try bench(["patchgd", "--size", String(size), "--backbone", "tiny", "--latent", "64", "--k", "16",
                              "--inner-iterations", "1", "--no-warmup"])
        return (try #require(line["peak_rss_mb"] as? Double), try #require(line["z_mb"] as? Double))
    }

    @Test func peakMemoryDoesNotGrowWithImageSize() throws {
        let small = try Self.peak(size: 1024), large = try Self.peak(size: 8192)
        // Z (64 x 64 x 64 floats = 1 MiB) and the head's activations (256 channels on the 64 x 64 grid and its
        // halvings, a few MiB each, kept for backward) are all that should grow. Encoding every patch at once would
        // add hundreds of MiB per thousand patches.
        #expect(large.peak - small.peak < 80, "peak \(small.peak) MiB at 1024 px, \(large.peak) MiB at 8192 px")
        #expect(large.zMB == 1)
    }

    static func activations(_ arguments: [String]) throws -> Double {
        try #require(try bench(["activations"] + arguments)["peak_tensor_mb"] as? Double)
    }

    /// The budget the demo and EXPERIMENTS.md compare at: GD on the image downscaled to 64 px and PatchGD recomputing
    /// k = 1 of its 64 px patches per image keep the same tensor memory in a step (measured: 30.0 and 30.9 MiB for
    /// tiny, batch 16), whatever the image size; k = 4 (s = 1/4 on a 4 x 4 grid) keeps 4 times as much (123 MiB).
    @Test func gdAndPatchGDAtOneBudgetKeepTheSameActivations() throws {
        let gd = try Self.activations(["--method", "gd", "--patch", "64"])
        let one = try Self.activations(["--method", "patchgd", "--image", "256", "--patch", "64", "--k", "1"])
        let four = try Self.activations(["--method", "patchgd", "--image", "256", "--patch", "64", "--k", "4"])
        #expect(one / gd > 0.9 && one / gd < 1.15, "GD-64 \(gd) MiB, PatchGD k = 1 \(one) MiB")
        #expect(four / gd > 3.5 && four / gd < 4.5, "GD-64 \(gd) MiB, PatchGD k = 4 \(four) MiB")
    }
}
