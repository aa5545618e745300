import ArgumentParser
import GigapatchCLI

/// `gigapatch-inspect`: what OpenSlide sees in each slide (vendor, levels, mpp and its source, properties).
@main
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-inspect",
        abstract: "Report vendor, pyramid levels, microns per pixel, objective power and properties of slides.",
        discussion: "Exit status is 1 when any slide could not be opened; the other slides are still reported.")

    @Flag(name: .long, help: "One JSON object per line per slide; unreadable slides give {\"path\", \"error\"}.")
    var json = false

    @Argument(help: "Slide files (anything OpenSlide reads: .svs, .ndpi, .mrxs, .tiff, ...).")
    var slides: [String]

    func run() throws {
        let failures = InspectCommand.run(paths: slides, json: json, output: .standard)
        if failures > 0 { throw ExitCode(1) }
    }
}
