import Foundation
import GRDB
import Testing
@testable import PatchIndex

/// A tiling's identity is its parameters away from their defaults: a parameter added later with its default keeps
/// every existing tiling (and checkpoint) matched.
struct TilingIdentityTests {
    static let defaults = #"{"patch_size":256,"min_tissue":0.5,"tissue":{"method":"otsu","median_kernel":7}}"#
    static let params = #"{"patch_size":64,"min_tissue":0.5,"tissue":{"method":"none","median_kernel":7}}"#

    func spec(_ params: String, defaults: String) -> TilingSpec {
        TilingSpec(patchSize: 64, stride: 64, level: 0, targetMPP: nil, minTissue: 0.5, tissueMethod: "none", paramsJSON: params, defaultsJSON: defaults)
    }

    @Test func defaultsDoNotCountAndOtherValuesDo() {
        #expect(TilingIdentity.normalised(params: Self.params, defaults: Self.defaults) == #"{"patch_size":64,"tissue":{"method":"none"}}"#)
        let other = Self.params.replacingOccurrences(of: "\"min_tissue\":0.5", with: "\"min_tissue\":0.6")
        #expect(TilingIdentity.of(params: other, defaults: Self.defaults) != TilingIdentity.of(params: Self.params, defaults: Self.defaults))
        // A parameter the JSON lacks is at its default (a tiling written before the parameter existed).
        let older = #"{"patch_size":64,"tissue":{"method":"none"}}"#
        #expect(TilingIdentity.of(params: older, defaults: Self.defaults) == TilingIdentity.of(params: Self.params, defaults: Self.defaults))
    }

    /// A new version adds `stain` with its default: ingest finds the old tiling, and the old checkpoint's parameters match it.
    @Test func aNewParameterAtItsDefaultKeepsTheOldTilingMatched() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        let old = try index.tilingID(datasetID: dataset, spec: spec(Self.params, defaults: Self.defaults))
        let newDefaults = Self.defaults.replacingOccurrences(of: "}}", with: "},\"stain\":\"none\"}")
        let newParams = Self.params.replacingOccurrences(of: "}}", with: "},\"stain\":\"none\"}")
        #expect(try index.tilingID(datasetID: dataset, spec: spec(newParams, defaults: newDefaults)) == old)
        #expect(try index.tiling(datasetID: dataset, matchingParams: Self.params, identity: nil) == old)
        // A parameter away from its default is another tiling.
        let stained = newParams.replacingOccurrences(of: "\"stain\":\"none\"", with: "\"stain\":\"macenko\"")
        #expect(try index.tilingID(datasetID: dataset, spec: spec(stained, defaults: newDefaults)) != old)
    }

    /// A tiling written before identities existed (migration v2 leaves it NULL) gets one from the next ingest, and a
    /// checkpoint of that time (parameters only) still finds it.
    @Test func tilingsFromBeforeIdentitiesAreMatched() throws {
        let index = try PatchIndex()
        let dataset = try index.datasetID(named: "d")
        try index.writer.write { db in
            try db.execute(sql: """
                INSERT INTO tilings (dataset_id, params_key, patch_size, stride, level, target_mpp, min_tissue, tissue_method, params)
                VALUES (?, ?, 64, 64, 0, NULL, 0.5, 'none', ?)
                """, arguments: [dataset, Self.params, Self.params])
        }
        let id = try #require(try index.writer.read { try Int64.fetchOne($0, sql: "SELECT id FROM tilings") })
        #expect(try index.tiling(datasetID: dataset, matchingParams: Self.params, identity: nil) == id)
        let newDefaults = Self.defaults.replacingOccurrences(of: "}}", with: "},\"stain\":\"none\"}")
        let newParams = Self.params.replacingOccurrences(of: "}}", with: "},\"stain\":\"none\"}")
        #expect(try index.tilingID(datasetID: dataset, spec: spec(newParams, defaults: newDefaults)) == id)
        #expect(try index.tilings(datasetID: dataset).first?.identity == TilingIdentity.of(params: newParams, defaults: newDefaults))
        #expect(try index.tiling(datasetID: dataset, matchingParams: Self.params, identity: nil) == id)
    }
}
