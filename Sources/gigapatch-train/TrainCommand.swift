import ArgumentParser
import Cluster
import Foundation
import GigapatchCLI
import PatchGD

/// `gigapatch-train`: trains PatchGD (or the GD baseline) on a dataset of the patch index.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-train",
        abstract: "Train PatchGD (or the GD baseline) on the slides of a patch index, streaming patches from the slide files.",
        discussion: """
            Every option can also be given in a YAML or JSON file (--config), named as here without the dashes \
            (augment: false for --no-augment). Later layers win: defaults, then the resumed run's options.json \
            (--resume), then the --config file, then the command line. RUNDIR gets options.json, metrics.jsonl, \
            metrics.csv and checkpoints/{last,best}.safetensors (with optimizer state beside each). \
            Exit status: 0 when the schedule is done, 75 when --time-limit stopped it (continue with --resume), \
            1 on an error.
            """)

    /// Parsed here for --help and to refuse bad command-line values at once; the run's options are then resolved
    /// from all layers (options.json, --config, the command line) by `TrainConfig.resolve`.
    @OptionGroup var options: TrainConfig

    /// Exit status of a run stopped at `--time-limit` (sysexits' EX_TEMPFAIL: try again later).
    static let timeLimitStatus: Int32 = 75

    func run() throws {
        let interactive = isatty(STDERR_FILENO) == 1
        let config: TrainConfig
        do { config = try TrainConfig.resolve(commandLine: Array(CommandLine.arguments.dropFirst())) } catch let error as TrainingError {
            throw ValidationError(error.message)
        }
        // Under mpirun every rank trains its share; rank 0 alone prints progress and epoch lines.
        let comm: Communicator
        do { comm = try Communicator.world() } catch {
            FileHandle.standardError.write(Data("gigapatch-train: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let quiet = !comm.isRoot
        var lastLine = Date.distantPast
        let trainer = Trainer(options: config, log: { line in
            if quiet { return }
            FileHandle.standardError.write(Data(((interactive ? "\r\u{1B}[K" : "") + line + "\n").utf8))
        }, progress: { p in
            if quiet { return }
            let now = Date()
            guard p.batch == p.batches || now.timeIntervalSince(lastLine) >= (interactive ? 0.5 : 30) else { return }
            lastLine = now
            let eta = p.batch < p.batches ? ", ETA " + ProgressReporter.duration(p.elapsed / Double(p.batch) * Double(p.batches - p.batch)) : ""
            let text = String(format: "epoch %d/%d batch %d/%d loss %.4f %.0f patches/s", p.epoch, p.epochs, p.batch, p.batches, p.loss, p.rate) + eta
            FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + text : text + "\n").utf8))
        }, communicator: comm)
        do {
            let summary = try trainer.run(resume: config.resume)
            // Every rank stops at the time limit together and exits with its status; rank 0 alone says so.
            if quiet { if summary.stoppedAtTimeLimit { throw ExitCode(TrainCommand.timeLimitStatus) } else { return } }
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            var lines = ["run: \(summary.runDirectory)", "last checkpoint: \(summary.lastCheckpoint)"]
            if let best = summary.bestCheckpoint, let epoch = summary.bestEpoch, let score = summary.bestScore {
                lines.append(String(format: "best checkpoint: %@ (epoch %d, val %@ %.4f)", best, epoch, config.selectBy.rawValue, score))
            }
            print(lines.joined(separator: "\n"))
            if summary.stoppedAtTimeLimit {
                // EX_TEMPFAIL: not finished, nothing wrong; a batch script or the pipeline runner resumes it.
                FileHandle.standardError.write(Data("gigapatch-train: stopped at --time-limit after epoch \(summary.epochs.last?.epoch ?? 0) of \(summary.scheduledEpochs); continue with: gigapatch-train --resume --out \(summary.runDirectory)\n".utf8))
                throw ExitCode(TrainCommand.timeLimitStatus)
            }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            if interactive && !quiet { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            // A rank's error ends every rank (MPI_Abort), with the message naming the rank; one process just exits.
            if comm.size > 1 { comm.abort("\(error)", program: "gigapatch-train") }
            FileHandle.standardError.write(Data("gigapatch-train: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
