import Foundation
import PatchIndex
import TestSupport
import Testing
@testable import Pipeline

/// Runs real stage executables (gigapatch-ultramnist, gigapatch-ingest from the build folder) on tiny data.
struct PipelineFixture {
    let dir = TemporaryDirectory()
    var path: String { dir.file("p.yaml") }

    init() throws {
        try FakeMNIST.write(to: dir.file("mnist"))
        try """
        name: tiny
        run_dir: ${work}/run
        variables:
          work: \(dir.path)
          size: 128
          manifest: ${work}/data/manifest.csv
        stages:
          - name: generate
            stage: ultramnist
            options:
              mnist: ${work}/mnist
              out: ${work}/data
              size: ${size}
              scale: 1...2
              digits: 1...2
              classes: 4
              train: 2
              val: 1
              test: 0
              seed: 1
          - name: ingest
            stage: ingest
            options:
              manifest: ${manifest}
              db: ${work}/index.sqlite
              preset: ultramnist
              patch-size: 64
              qc-dir: ${work}/qc
        """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    static var binaries: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        return FileManager.default.isExecutableFile(atPath: directory + "/gigapatch-ingest") ? directory : nil
    }

    func run(_ overrides: [String: String] = [:], force: Set<String> = [], from: String? = nil, dryRun: Bool = false) throws -> (RunManifest?, PipelineError?) {
        let runner = PipelineRunner(file: try PipelineFile.load(path, overrides: overrides)) { _ in }
        runner.dryRun = dryRun
        let binaries: String = try #require(Self.binaries, "build the executables first (scripts/test does)")
        runner.executableDirectory = binaries
        runner.force = force
        runner.from = from
        do { return (try runner.run(), nil) } catch let error as PipelineError { return (nil, error) }
    }

    func manifest() throws -> RunManifest {
        try JSONDecoder().decode(RunManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir.file("run/run.json"))))
    }

    func statuses() throws -> [String] { try manifest().stages.map(\.status) }
}

struct PipelineFileTests {
    @Test func variablesAreSubstitutedAndOverridden() throws {
        let f = try PipelineFixture()
        let file = try PipelineFile.load(f.path)
        #expect(file.stages.map(\.name) == ["generate", "ingest"])
        #expect(file.stages[0].text("size") == "128" && file.stages[0].text("out") == f.dir.path + "/data")
        #expect(file.stages[1].text("manifest") == f.dir.path + "/data/manifest.csv")   // a variable using a variable
        #expect(file.runDirectory == f.dir.path + "/run")
        #expect(file.stages[0].arguments.contains("--scale") && file.stages[0].arguments.contains("1...2"))
        let overridden = try PipelineFile.load(f.path, overrides: ["size": "96"])
        #expect(overridden.stages[0].text("size") == "96")
        let unknown = #expect(throws: PipelineError.self) { try PipelineFile.load(f.path, overrides: ["sise": "96"]) }
        #expect(unknown?.message.contains("sise") == true && unknown?.message.contains("size") == true)
        try "stages:\n  - stage: ingest\n    options:\n      db: ${nowhere}/x\n".write(toFile: f.dir.file("bad.yaml"), atomically: true, encoding: .utf8)
        let undefined = #expect(throws: PipelineError.self) { try PipelineFile.load(f.dir.file("bad.yaml")) }
        #expect(undefined?.message.contains("${nowhere}") == true)
        try "stages:\n  - stage: tile\n".write(toFile: f.dir.file("bad2.yaml"), atomically: true, encoding: .utf8)
        #expect(throws: PipelineError.self) { try PipelineFile.load(f.dir.file("bad2.yaml")) }
    }
}

struct PipelineRunnerTests {
    @Test func skipsUnchangedStagesAndRedoesAfterAChange() throws {
        let f = try PipelineFixture()
        _ = try f.run()
        #expect(try f.statuses() == ["done", "done"])
        _ = try f.run()
        #expect(try f.statuses() == ["skipped", "skipped"])
        _ = try f.run(force: ["ingest"])
        #expect(try f.statuses() == ["skipped", "done"])
        _ = try f.run(["size": "96"])                       // a parameter changed: its stage and everything after it
        #expect(try f.statuses() == ["done", "done"])
        #expect(try f.manifest().stages[0].reason == "inputs or parameters changed")
        // An output changed behind the runner's back: that stage is redone.
        try FileManager.default.removeItem(atPath: f.dir.file("qc"))
        _ = try f.run(["size": "96"])
        #expect(try f.statuses() == ["skipped", "done"])
    }

    /// The command line as documented: one --set with several key=value pairs.
    @Test func commandLineTakesSeveralSetValues() throws {
        let f = try PipelineFixture()
        let binaries: String = try #require(PipelineFixture.binaries, "build the executables first (scripts/test does)")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binaries + "/gigapatch")
        process.arguments = ["run", f.path, "--set", "size=96", "manifest=\(f.dir.file("m.csv"))", "--dry-run"]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("--size 96") && text.contains("m.csv"))
    }

    @Test func failedStageStopsAndRerunResumesThere() throws {
        let f = try PipelineFixture()
        let (_, error) = try f.run(["manifest": f.dir.file("missing.csv")])
        #expect(error?.message.contains("ingest") == true)
        let failed = try f.manifest()
        #expect(failed.status == "failed" && failed.failedStage == "ingest")
        #expect(failed.stages.map(\.status) == ["done", "failed"] && failed.stages[1].exitStatus != 0)
        let (manifest, again) = try f.run()                  // cause fixed (the right manifest)
        #expect(again == nil)
        #expect(manifest?.stages.map(\.status) == ["skipped", "done"])
    }

    /// A train stage stopped by its --time-limit is reported as that (exit 75), not as a failure to fix, and the next
    /// run continues it with --resume even under another limit: the limit is not in the fingerprint, so the run
    /// folder is neither redone nor removed.
    @Test func aTrainStageStoppedAtItsTimeLimitContinuesOnTheNextRun() throws {
        let f = try PipelineFixture()
        var text = try String(contentsOfFile: f.path, encoding: .utf8)
        text = text.replacingOccurrences(of: "  size: 128\n", with: "  size: 128\n  limit: 0.001s\n")
        text += """

          - name: train
            stage: train
            options: {db: "${work}/index.sqlite", out: "${work}/train", backbone: tiny, latent: 8, head-features: 8, normalization: mnist,
                      epochs: 2, batch-size: 4, sampling: 0.5, no-augment: true, workers: 1, time-limit: "${limit}"}
        """
        try text.write(toFile: f.path, atomically: true, encoding: .utf8)
        let epochs = {
            try String(contentsOfFile: f.dir.file("train/metrics.jsonl"), encoding: .utf8).split(separator: "\n").map { line in
                (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["epoch"] as? Int ?? -1
            }
        }
        let (_, error) = try f.run()
        #expect(error?.message.contains("stopped at its time-limit") == true, "\(error?.message ?? "no error")")
        let stopped = try f.manifest()
        #expect(stopped.status == "stopped-at-time-limit" && stopped.stages.last?.status == "stopped-at-time-limit")
        #expect(stopped.stages.last?.exitStatus == 75)
        #expect(try epochs() == [1])

        let (manifest, again) = try f.run(["limit": "1h"])
        #expect(again == nil, "\(again?.message ?? "")")
        #expect(manifest?.stages.map(\.status) == ["skipped", "skipped", "done"])
        #expect(manifest?.stages.last?.command.contains("--resume") == true, "continued, not redone")
        #expect(try epochs() == [1, 2])
    }

    @Test func runManifestRecordsWhatMadeTheResults() throws {
        let f = try PipelineFixture()
        _ = try f.run()
        let m = try f.manifest()
        #expect(m.status == "done" && m.version == PipelineRunner.version && !m.gitCommit.isEmpty)
        #expect(m.variables["size"] == "128" && m.pipelineHash.count == 16)
        let generate = m.stages[0], ingest = m.stages[1]
        #expect(generate.command[0].hasSuffix("gigapatch-ultramnist") && generate.command.contains("--seed"))
        #expect(generate.options["classes"] == .text("4"))
        let mnist = try #require(generate.inputs.first { $0.option == "mnist" })
        #expect(mnist.kind == "directory" && mnist.files == 4 && mnist.bytes > 0 && mnist.hash.count == 16)
        let manifestInput = try #require(ingest.inputs.first { $0.option == "manifest" })
        #expect(manifestInput.kind == "file" && manifestInput.bytes > 0)
        #expect(ingest.outputs.contains { $0.option == "db" && $0.exists })
        #expect(generate.started != nil && generate.finished != nil && generate.exitStatus == 0 && (generate.seconds ?? -1) >= 0)
        let dry = PipelineRunner(file: try PipelineFile.load(f.path, overrides: ["size": "64"])) { _ in }
        dry.executableDirectory = PipelineFixture.binaries
        dry.dryRun = true
        let planned = try dry.run()
        #expect(planned.stages.map(\.status) == ["not-run", "not-run"] && planned.stages[0].reason == "inputs or parameters changed")
        #expect(try f.manifest().variables["size"] == "128")   // a dry run leaves run.json alone
    }
}

/// `launcher:` runs ingest, train and predict stages as the ranks of an MPI job.
struct LauncherTests {
    static let mpirun = "env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"

    /// The fixture's pipeline with a top-level launcher (and optionally one on the generate stage).
    static func pipeline(_ f: PipelineFixture, launcher: String, onGenerate: String? = nil) throws -> PipelineFile {
        var text = try String(contentsOfFile: f.path, encoding: .utf8)
        text = text.replacingOccurrences(of: "stages:\n", with: "launcher: \"\(launcher)\"\nstages:\n")
        if let onGenerate { text = text.replacingOccurrences(of: "    stage: ultramnist\n", with: "    stage: ultramnist\n    launcher: \"\(onGenerate)\"\n") }
        try text.write(toFile: f.path, atomically: true, encoding: .utf8)
        return try PipelineFile.load(f.path)
    }

    @Test func aTopLevelLauncherAppliesToStagesThatRunUnderOne() throws {
        let f = try PipelineFixture()
        let file = try Self.pipeline(f, launcher: "mpirun -np 4 --hostfile 'my hosts'")
        #expect(file.stages.map(\.launcher) == [[], ["mpirun", "-np", "4", "--hostfile", "my hosts"]])
        let refused = #expect(throws: PipelineError.self) { try Self.pipeline(PipelineFixture(), launcher: "mpirun", onGenerate: "mpirun -np 2") }
        #expect(refused?.message.contains("does not run under a launcher") == true)
        let f2 = try PipelineFixture()
        var text = try String(contentsOfFile: f2.path, encoding: .utf8)
        text = text.replacingOccurrences(of: "stages:\n", with: "launcher: mpirun\nstages:\n").replacingOccurrences(of: "    stage: ingest\n", with: "    stage: ingest\n    launcher: \"\"\n")
        try text.write(toFile: f2.path, atomically: true, encoding: .utf8)
        #expect(try PipelineFile.load(f2.path).stages.map(\.launcher) == [[], []])
    }

    @Test(.disabled(if: Executables.mpirun == nil, "needs Open MPI (scripts/setup --tests installs it)"))
    func anIngestStageRunsAsTwoRanksAndTheManifestSaysSo() throws {
        let f = try PipelineFixture()
        let file = try Self.pipeline(f, launcher: Self.mpirun)
        let runner = PipelineRunner(file: file) { _ in }
        let binaries: String = try #require(PipelineFixture.binaries, "build the executables first (scripts/test does)")
        runner.executableDirectory = binaries
        let manifest = try runner.run()
        #expect(manifest.stages.map(\.status) == ["done", "done"])
        let ingest = manifest.stages[1]
        #expect(ingest.launcher?.contains("mpirun") == true && ingest.command.first?.hasSuffix("/env") == true, "\(ingest.command)")
        #expect(ingest.command.contains { $0.hasSuffix("/gigapatch-ingest") })
        let written = try f.manifest()
        #expect(written.stages[1].launcher == ingest.launcher)
        let counts = try PatchIndex.existing(at: f.dir.file("index.sqlite")).statusCounts(tilingID: 1)
        #expect(counts["failed"] == nil && (counts["done"] ?? 0) >= 3, "\(counts)")
    }
}
