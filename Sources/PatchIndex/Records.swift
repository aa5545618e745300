import GRDB

/// A row of `slides`: one slide file of a dataset and what OpenSlide reported of it.
public struct SlideRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "slides"
    public var id: Int64?
    public var datasetID: Int64
    public var slideKey: String
    public var path: String
    public var fileSize: Int64?
    public var fileMtime: Double?
    public var quickHash: String?
    public var vendor: String?
    public var width: Int?
    public var height: Int?
    public var levelCount: Int?
    public var mppX: Double?
    public var mppY: Double?
    public var mppSource: String

    enum CodingKeys: String, CodingKey {
        case id, path, vendor, width, height
        case datasetID = "dataset_id", slideKey = "slide_key", fileSize = "file_size", fileMtime = "file_mtime"
        case quickHash = "quick_hash", levelCount = "level_count", mppX = "mpp_x", mppY = "mpp_y", mppSource = "mpp_source"
    }

    public init(id: Int64? = nil, datasetID: Int64, slideKey: String, path: String, fileSize: Int64? = nil, fileMtime: Double? = nil,
                quickHash: String? = nil, vendor: String? = nil, width: Int? = nil, height: Int? = nil, levelCount: Int? = nil,
                mppX: Double? = nil, mppY: Double? = nil, mppSource: String = "unknown") {
        self.id = id
        self.datasetID = datasetID
        self.slideKey = slideKey
        self.path = path
        self.fileSize = fileSize
        self.fileMtime = fileMtime
        self.quickHash = quickHash
        self.vendor = vendor
        self.width = width
        self.height = height
        self.levelCount = levelCount
        self.mppX = mppX
        self.mppY = mppY
        self.mppSource = mppSource
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A row of `patches`: where one kept patch is, never its pixels.
public struct PatchRecord: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "patches"
    public var id: Int64?
    public var slideID: Int64
    public var tilingID: Int64
    /// Level-0 origin of the patch.
    public var level0X: Int
    public var level0Y: Int
    /// Pyramid level read, and the side read there (resampled to the tiling's patch size).
    public var level: Int
    public var readSize: Int
    /// Cell of the patch in the slide's grid (the trainer's latent grid Z).
    public var gridRow: Int
    public var gridCol: Int
    public var tissueFraction: Double

    enum CodingKeys: String, CodingKey {
        case id, level
        case slideID = "slide_id", tilingID = "tiling_id", level0X = "level0_x", level0Y = "level0_y", readSize = "read_size"
        case gridRow = "grid_row", gridCol = "grid_col", tissueFraction = "tissue_fraction"
    }

    public init(id: Int64? = nil, slideID: Int64, tilingID: Int64, level0X: Int, level0Y: Int, level: Int, readSize: Int,
                gridRow: Int, gridCol: Int, tissueFraction: Double) {
        self.id = id
        self.slideID = slideID
        self.tilingID = tilingID
        self.level0X = level0X
        self.level0Y = level0Y
        self.level = level
        self.readSize = readSize
        self.gridRow = gridRow
        self.gridCol = gridCol
        self.tissueFraction = tissueFraction
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One kept cell of a slide's grid, as ingest hands it to the index: where the patch is and how much tissue it holds.
/// The level read and the size read there are the grid's (`GridInfo`), the slide and tiling the call's.
public struct PatchCell: Sendable, Equatable, Codable {
    public var level0X: Int
    public var level0Y: Int
    public var gridRow: Int
    public var gridCol: Int
    public var tissueFraction: Double

    public init(level0X: Int, level0Y: Int, gridRow: Int, gridCol: Int, tissueFraction: Double) {
        self.level0X = level0X
        self.level0Y = level0Y
        self.gridRow = gridRow
        self.gridCol = gridCol
        self.tissueFraction = tissueFraction
    }
}
