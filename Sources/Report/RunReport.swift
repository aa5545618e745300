import Basics
import Foundation

/// Everything `report.html` shows, read from a run directory (and optionally predictions, heatmaps and QC pictures).
public struct RunReport: Sendable {
    /// One epoch of `metrics.jsonl`.
    public struct Epoch: Decodable, Sendable {
        public var epoch: Int
        public var trainLoss: Double
        public var trainAccuracy: Double
        public var valLoss: Double?
        public var valAccuracy: Double?
        public var valKappa: Double?
        public var valConfusion: [[Int]]?
        public var lr: Double
        public var seconds: Double
        public var patchesPerS: Double
        public var peakRssMb: Double

        enum CodingKeys: String, CodingKey {
            case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss", valAccuracy = "val_accuracy"
            case valKappa = "val_kappa", valConfusion = "val_confusion", lr, seconds, patchesPerS = "patches_per_s", peakRssMb = "peak_rss_mb"
        }
    }

    /// One predicted slide.
    public struct Prediction: Sendable {
        public var imageID: String
        public var label: Int?
        public var predicted: Int
        public var probabilities: [Double]
        /// The slide's heatmap picture as a data: URI (JPEG), when there is one.
        public var heatmap: String?
        /// The slide's plain thumbnail (data: URI), when there is one.
        public var thumbnail: String?
        public var confidence: Double { probabilities.indices.contains(predicted) ? probabilities[predicted] : 0 }
    }

    /// One ingest QC picture (data: URI) or a slide without one and why.
    public struct QCItem: Sendable {
        public var name: String
        public var picture: String?
        public var problem: String?
    }

    public var title: String
    public var runDirectory: String
    public var epochs: [Epoch] = []
    /// options.json, flattened to key and value text, sorted.
    public var options: [(key: String, value: String)] = []
    /// The best checkpoint's description (method, backbone, dataset, tiling, ...), flattened.
    public var checkpoint: [(key: String, value: String)] = []
    public var selectBy: String = "kappa"
    public var bestEpoch: Int?
    public var toolVersion: String
    public var commit: String?
    /// A pipeline's run.json, pretty-printed, when the run came from one.
    public var pipelineRun: String?
    public var predictions: [Prediction] = []
    public var predictionsFile: String?
    public var qc: [QCItem] = []
    public var generated: Date = Date()

    public init(title: String, runDirectory: String, toolVersion: String, commit: String? = nil) {
        self.title = title
        self.runDirectory = runDirectory
        self.toolVersion = toolVersion
        self.commit = commit
    }
}
