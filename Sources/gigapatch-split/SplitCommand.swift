import ArgumentParser
import Foundation
import Splits

/// `gigapatch-split`: stratified, seeded folds or train/val/test splits, to the patch index and/or a manifest.
@main
struct SplitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gigapatch-split",
        abstract: "Assign slides to stratified k folds or train/val/test splits by label, seeded; optionally keep groups together.",
        discussion: """
            With --folds K every slide is 'train' with a fold 0...K-1 (gigapatch-train --val-fold F validates on fold F); \
            with --fractions the slides are train, val or test. Each fold or split gets each class's share within one \
            slide. --group-by COLUMN (e.g. data_provider, patient) keeps slides with the same value in one fold or split. \
            The splits go to the index under --scheme (the trainer's --split-scheme) and, with --out, to a manifest.
            """)

    @Option(help: "Patch index: split the slides of a dataset there and record the splits in it.") var db: String?
    @Option(help: "Dataset in the index (default: the only one).") var dataset: String?
    @Option(help: "Or split the slides of this manifest (PANDA train.csv or generic).") var manifest: String?
    @Option(help: "Write slide,label,split,fold[,group] here.") var out: String?
    @Option(help: "Number of stratified folds.") var folds: Int?
    @Option(help: "train,val,test fractions, e.g. 0.8,0.1,0.1.") var fractions: String?
    @Option(help: "Keep slides with the same value of this manifest column together.") var groupBy: String?
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(help: "Split scheme name in the index.") var scheme: String = "default"

    func run() throws {
        let plan: SplitPlan
        switch (folds, fractions) {
        case (let k?, nil): plan = .folds(k)
        case (nil, let f?):
            let parts = f.split(separator: ",").compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 3 else { throw ValidationError("--fractions needs three numbers train,val,test, e.g. 0.8,0.1,0.1") }
            plan = .fractions(train: parts[0], val: parts[1], test: parts[2])
        default: throw ValidationError("give one of --folds K or --fractions train,val,test")
        }
        do {
            let summary = try SplitStage.run(SplitRequest(db: db, dataset: dataset, manifest: manifest, out: out, plan: plan,
                                                          groupBy: groupBy, seed: seed, scheme: scheme)) {
                FileHandle.standardError.write(Data(($0 + "\n").utf8))
            }
            print(summary.table)
            if let out { print("wrote \(out)") }
            if let db { print("recorded \(summary.assignments.count) slides in \(db) under split scheme '\(scheme)'") }
        } catch {
            FileHandle.standardError.write(Data("gigapatch-split: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
