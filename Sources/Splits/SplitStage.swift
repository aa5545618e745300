import Basics
import Foundation
import Manifests
import PatchIndex

/// What `gigapatch-split` is asked to do.
public struct SplitRequest: Sendable {
    /// Slides and labels from this patch index (and the splits are written to it) ...
    public var db: String?
    public var dataset: String?
    /// ... or from this manifest (PANDA train.csv or generic).
    public var manifest: String?
    /// Write a generic manifest (slide,label,split,fold[,group column]) here.
    public var out: String?
    public var plan: SplitPlan
    public var groupBy: String?
    public var seed: UInt64
    public var scheme: String

    public init(db: String?, dataset: String?, manifest: String?, out: String?, plan: SplitPlan, groupBy: String?, seed: UInt64, scheme: String) {
        self.db = db
        self.dataset = dataset
        self.manifest = manifest
        self.out = out
        self.plan = plan
        self.groupBy = groupBy
        self.seed = seed
        self.scheme = scheme
    }
}

/// The result: per slide key, its assignment, and a table of class counts per split or fold.
public struct SplitSummary: Sendable {
    public var assignments: [String: SplitAssignment]
    public var table: String
    public var unlabelled: Int
}

/// Assigns slides to stratified folds or train/val/test splits and writes them to the index and/or a manifest.
public enum SplitStage {
    public static func run(_ request: SplitRequest, log: (String) -> Void = { _ in }) throws -> SplitSummary {
        guard request.db != nil || request.manifest != nil else { throw SplitError("give --db (slides of a patch index) or --manifest") }
        if case .folds(let k) = request.plan, k < 2 { throw SplitError("--folds must be at least 2") }
        if case .fractions(let a, let b, let c) = request.plan, a < 0 || b < 0 || c < 0 || a + b + c <= 0 {
            throw SplitError("--fractions must be three non-negative numbers train,val,test with a positive sum")
        }
        var items: [SplitItem] = [], unlabelled = 0
        var index: PatchIndex?, ids: [String: Int64] = [:]
        if let db = request.db {
            let opened = try PatchIndex.existing(at: db)
            index = opened
            let names = try opened.datasetNames()
            let name = request.dataset ?? (names.count == 1 ? names[0] : "")
            guard let datasetID = try opened.existingDatasetID(named: name) else {
                throw SplitError("\(db): \(request.dataset == nil ? "choose a dataset with --dataset" : "no dataset '\(name)'"); the index has \(names.joined(separator: ", "))")
            }
            for slide in try opened.labelledSlides(datasetID: datasetID) {
                ids[slide.key] = slide.id
                guard let label = slide.label else { unlabelled += 1; continue }
                items.append(SplitItem(key: slide.key, label: label, group: try group(slide.fields, request, slide.key, source: db)))
            }
        } else if let path = request.manifest {
            let manifest = try Manifest.read(path: path)
            for problem in manifest.problems { log("manifest \(problem)") }
            for entry in manifest.entries {
                guard let label = entry.label else { unlabelled += 1; continue }
                items.append(SplitItem(key: entry.key, label: label, group: try group(entry.fields, request, entry.key, source: path)))
            }
        }
        guard !items.isEmpty else { throw SplitError("\(request.db ?? request.manifest!): no labelled slides to split") }
        if unlabelled > 0 { log("note: \(unlabelled) slides have no label and get no split") }
        let assignments = Splitter.assign(items, plan: request.plan, seed: request.seed)
        if let index {
            try index.setSplits(items.map { (ids[$0.key]!, assignments[$0.key]!.split, assignments[$0.key]!.fold) }, scheme: request.scheme)
        }
        if let out = request.out {
            var header = ["slide", "label", "split", "fold"]
            if let g = request.groupBy { header.append(g) }
            let rows = items.sorted { $0.key < $1.key }.map { item -> [String] in
                let a = assignments[item.key]!
                return [item.key, String(item.label), a.split, a.fold.map(String.init) ?? ""] + (request.groupBy != nil ? [item.group ?? ""] : [])
            }
            do { try AtomicFile.write(CSV.format(header: header, rows: rows), to: out) } catch { throw SplitError("\(error)", kind: .unwritable) }
        }
        return SplitSummary(assignments: assignments, table: table(items, assignments), unlabelled: unlabelled)
    }

    static func group(_ fields: [String: String], _ request: SplitRequest, _ key: String, source: String) throws -> String? {
        guard let column = request.groupBy else { return nil }
        guard let value = fields[column], !value.isEmpty else {
            throw SplitError("\(source): slide \(key) has no '\(column)' (the --group-by column); fill it in or drop --group-by")
        }
        return value
    }

    /// Class counts per split or fold.
    static func table(_ items: [SplitItem], _ assignments: [String: SplitAssignment]) -> String {
        let labels = Set(items.map(\.label)).sorted()
        let bins = Set(assignments.values.map { $0.fold.map { "fold \($0)" } ?? $0.split }).sorted()
        var lines = ["bin      " + labels.map { String(format: "%6d", $0) }.joined() + "  total"]
        for bin in bins {
            let members = items.filter { let a = assignments[$0.key]!; return (a.fold.map { "fold \($0)" } ?? a.split) == bin }
            lines.append(bin.padding(toLength: 9, withPad: " ", startingAt: 0)
                         + labels.map { l in String(format: "%6d", members.filter { $0.label == l }.count) }.joined()
                         + String(format: "%7d", members.count))
        }
        return lines.joined(separator: "\n")
    }
}

/// A split that cannot be made: what, where, and what to do.
public struct SplitError: Error, Sendable, CustomStringConvertible, KindedError {
    public let message: String
    public let kind: ErrorKind
    public init(_ message: String, kind: ErrorKind = .badOption) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}
