import NN
import Seeded

/// The patch grid of one image: `rows` x `cols` cells, of which `cells` (row-major indices) hold a patch.
///
/// Cell (row, col) of the latent grid Z is patch (row, col) of the tiling (the reference code stores the transpose).
/// Cells without a patch (no tissue) hold zeros in Z and are never encoded or sampled.
public struct PatchGrid: Sendable, Equatable {
    public var rows: Int
    public var cols: Int
    public var cells: [Int]

    public init(rows: Int, cols: Int, cells: [Int]? = nil) {
        self.rows = rows
        self.cols = cols
        self.cells = cells ?? Array(0 ..< rows * cols)
    }
}

/// How PatchGD samples and steps (Gupta et al. 2023, as its reference implementation runs it).
public struct PatchGDConfig: Sendable, Equatable {
    /// Fraction s of an image's patches recomputed with gradients per inner iteration (k = ceil(cells * s)).
    public var sampling: Double = 1.0 / 8
    /// A fixed k instead of the fraction (bounds memory whatever the image size).
    public var patchesPerStep: Int?
    /// Inner iterations per mini-batch; nil = enough for one sweep of every patch (recomputed whenever s or k changes).
    public var innerIterations: Int?
    /// Accumulate over the inner iterations and take one step (the default, as the reference does); otherwise step after each.
    public var accumulate = true
    /// BatchNorm statistics of the training fill pass: running (evaluation mode) or each fill chunk's own (batch).
    public var fillStatistics: FillStatistics = .running
    /// BatchNorm frozen at its running statistics in every pass (the fill then uses them too, whatever `fillStatistics`).
    public var batchNorm: BatchNormMode = .train

    public init(sampling: Double = 1.0 / 8, patchesPerStep: Int? = nil, innerIterations: Int? = nil, accumulate: Bool = true,
                fillStatistics: FillStatistics = .running, batchNorm: BatchNormMode = .train) {
        self.batchNorm = batchNorm
        self.sampling = sampling
        self.patchesPerStep = patchesPerStep
        self.innerIterations = innerIterations
        self.accumulate = accumulate
        self.fillStatistics = fillStatistics
    }

    /// Patches recomputed per image per inner iteration for an image with `cells` patches.
    public func k(cells: Int) -> Int {
        max(1, min(cells, patchesPerStep ?? Int((Double(cells) * sampling).rounded(.up))))
    }

    /// Inner iterations for a batch whose largest image has `cells` patches: one sweep unless set explicitly.
    public func iterations(cells: Int) -> Int {
        innerIterations ?? Int((Double(cells) / Double(k(cells: cells))).rounded(.up))
    }
}

/// BatchNorm while training: batch statistics with running ones updated (PyTorch's train mode), or frozen at the
/// running statistics (PyTorch's eval mode on BatchNorm alone).
public enum BatchNormMode: String, Sendable, Codable, CaseIterable { case train, frozen }

/// Which statistics BatchNorm uses while the training step fills Z without gradients.
public enum FillStatistics: String, Sendable, Codable, CaseIterable {
    /// The running statistics (evaluation mode): the fill neither moves them nor depends on its chunking.
    case running
    /// Each fill chunk's own statistics, as the recomputed patches get, without updating the running ones: early in
    /// training, when the running statistics still lag the weights, Z's filled cells then match its recomputed ones.
    case batch
}

/// Supplies patch pixels: the (N, 3, P, P) tensor of the given cells of image `image`, normalised.
public typealias PatchProvider = (_ image: Int, _ cells: [Int]) throws -> Tensor

/// Announces patches that will be asked for next (image, cells), so a reader can decode them in the background.
public typealias PatchPrefetcher = (_ image: Int, _ cells: [Int]) -> Void

/// What one PatchGD training step did.
public struct PatchGDStepResult: Sendable {
    /// Mean of the inner iterations' losses.
    public var loss: Float
    /// Logits of the last head pass, (B, classes).
    public var logits: Tensor
    public var innerIterations: Int
    public var optimizerSteps: Int
}

/// PatchGD over a backbone (patch to latent vector) and a head (latent grid to class logits).
///
/// Training step, for a mini-batch of B images:
/// 1. Fill Z (B, C, rows, cols) by encoding every patch without gradients.
/// 2. For each inner iteration: take the next group of k patches of each image (a fresh random order per step),
///    recompute them with gradients, write them into a detached copy of Z, run the head on the whole Z, and
///    back-propagate loss / epsilon into the head and, through the recomputed cells only, into the backbone.
/// 3. With accumulation (epsilon = number of inner iterations) one optimizer step per mini-batch, else one per iteration.
///
/// BatchNorm during the fill pass: evaluation mode (running statistics), so the no-gradient encoding of thousands of
/// patches neither moves the running statistics nor depends on how the fill is chunked; the recomputed patches
/// use training mode (batch statistics over the k patches), as gradients need.
public final class PatchGD {
    public let backbone: Model
    public let head: Model
    public var config: PatchGDConfig
    /// nil for a core built only to predict (`fill` and the head); `trainStep` needs both.
    public let backboneOptimizer: Optimizer?
    public let headOptimizer: Optimizer?
    /// Patches encoded per backbone call during the fill pass (bounds the fill's memory).
    public var fillChunk = 64
    /// The matrix products' precision in every pass (fill, recompute, head); see `Precision`.
    public var precision: Precision = .fp32
    /// Called just before every optimizer step, with the gradients in place (learning-rate schedule, clipping).
    public var beforeStep: (() -> Void)?

    public init(backbone: Model, head: Model, config: PatchGDConfig, backboneOptimizer: Optimizer?, headOptimizer: Optimizer?) {
        self.backbone = backbone
        self.head = head
        self.config = config
        self.backboneOptimizer = backboneOptimizer
        self.headOptimizer = headOptimizer
    }

    /// Z for a batch: every present patch encoded without gradients; absent cells and padding are zero.
    ///
    /// - Returns: Z of shape (B, C, R, Cc), R and Cc the largest grid in the batch.
    public func fill(_ grids: [PatchGrid], patches: PatchProvider, prefetch: PatchPrefetcher? = nil, batchStatistics: Bool = false) throws -> Tensor {
        let c = backbone.outputs, rows = grids.map(\.rows).max() ?? 0, cols = grids.map(\.cols).max() ?? 0
        let z = Tensor(shape: [grids.count, c, rows, cols])
        let ctx = Context(training: false, recordForBackward: false, precision: precision)
        ctx.batchStatistics = batchStatistics
        let chunks = Self.chunks(grids, size: fillChunk)
        for (i, chunk) in chunks.enumerated() {
            if let prefetch, i + 1 < chunks.count { for piece in chunks[i + 1] { prefetch(piece.image, piece.cells) } }
            Self.write(backbone.forward(try Self.gather(chunk, patches), ctx), pieces: chunk, into: z, grids: grids)
        }
        return z
    }

    /// One training step on a mini-batch; returns the mean loss.
    ///
    /// Data-parallel callers (each process holding a share of a larger mini-batch) pass `orderSeeds`, one per image
    /// derived from its place in the whole mini-batch, and `largestCells`, the largest grid of the whole mini-batch,
    /// so every process draws the patch orders and runs the inner iterations one process would. A share with no image
    /// still takes its optimizer steps (with zero gradients before `beforeStep` sums them across processes).
    public func trainStep(_ grids: [PatchGrid], labels: [Int], patches: PatchProvider, prefetch: PatchPrefetcher? = nil,
                          rng: inout SplitMix64, loss: (Tensor, [Int]) -> LossResult, scale: Float = 1,
                          orderSeeds: [UInt64]? = nil, largestCells: Int? = nil) throws -> PatchGDStepResult {
        guard let backboneOptimizer, let headOptimizer else { preconditionFailure("PatchGD.trainStep on a core built without optimizers (prediction only)") }
        let orders = orderSeeds.map { seeds in
            zip(grids, seeds).map { grid, seed in
                var own = SplitMix64(seed: seed)
                return grid.cells.shuffled(using: &own)
            }
        } ?? grids.map { $0.cells.shuffled(using: &rng) }
        let largest = largestCells ?? grids.map(\.cells.count).max() ?? 0
        let iterations = config.iterations(cells: largest)
        if grids.isEmpty {
            backbone.store.zeroGradients()
            head.store.zeroGradients()
            let steps = config.accumulate ? 1 : iterations
            for _ in 0 ..< steps {
                beforeStep?()
                backboneOptimizer.step(scale: scale)
                headOptimizer.step(scale: scale)
            }
            return PatchGDStepResult(loss: 0, logits: Tensor(shape: [0, head.outputs]), innerIterations: iterations, optimizerSteps: steps)
        }
        let groupsOf = { (j: Int) in orders.map { Self.group(j, of: $0, k: self.config.k(cells: $0.count), wrap: self.config.innerIterations != nil) } }
        let z = try fill(grids, patches: patches, prefetch: prefetch, batchStatistics: config.fillStatistics == .batch && config.batchNorm == .train)
        if let prefetch { for (b, cells) in groupsOf(0).enumerated() { prefetch(b, cells) } }
        let epsilon = Float(config.accumulate ? iterations : 1)
        var total: Float = 0, steps = 0
        var logits = Tensor(shape: [grids.count, head.outputs])
        backbone.store.zeroGradients()
        head.store.zeroGradients()
        for j in 0 ..< iterations {
            let groups = groupsOf(j)
            if let prefetch, j + 1 < iterations { for (b, cells) in groupsOf(j + 1).enumerated() { prefetch(b, cells) } }
            let zj = z.copy()
            let ctx = Context(training: true, recordForBackward: true, seed: rng.next(), precision: precision)
            ctx.frozenBatchNorm = config.batchNorm == .frozen
            // Recompute the sampled patches of all images in one backbone batch.
            let pieces: [Piece] = groups.enumerated().filter { !$0.element.isEmpty }.map { ($0.offset, $0.element) }
            let features: Tensor? = pieces.isEmpty ? nil : backbone.forward(try Self.gather(pieces, patches), ctx)
            if let features { Self.write(features, pieces: pieces, into: zj, grids: grids) }
            logits = head.forward(zj, ctx)
            let result = loss(logits, labels)
            total += result.loss
            let dLogits = result.gradient
            if epsilon != 1 { for i in 0 ..< dLogits.count { dLogits.pointer[i] /= epsilon } }
            let dz = head.backward(dLogits, ctx)
            if let features {
                let dFeatures = Tensor(shape: features.shape)
                Self.read(dz, pieces: pieces, into: dFeatures, grids: grids)
                backbone.backward(dFeatures, ctx)
            }
            if !config.accumulate || j == iterations - 1 {
                beforeStep?()
                backboneOptimizer.step(scale: scale)
                headOptimizer.step(scale: scale)
                steps += 1
                if j < iterations - 1 {
                    backbone.store.zeroGradients()
                    head.store.zeroGradients()
                }
            }
        }
        return PatchGDStepResult(loss: total / Float(iterations), logits: logits, innerIterations: iterations, optimizerSteps: steps)
    }

    /// Inference: fill Z without gradients and run the head once in evaluation mode.
    public func predict(_ grids: [PatchGrid], patches: PatchProvider) throws -> Tensor {
        head.forward(try fill(grids, patches: patches), Context(training: false, recordForBackward: false, precision: precision))
    }

    // MARK: Where the model looked

    /// Gradient x input on Z for each image's `targets` class: the head runs in evaluation mode on `z`, back-propagates
    /// a one-hot gradient of the target logit, and each cell's score is sum over channels of dLogit/dZ * Z, how much
    /// that cell's latent vector adds to the logit (to first order).
    /// - Parameter targets: each image's target class, chosen from the logits of this same head pass (a negative
    ///   target attributes the sum of the logits).
    /// - Returns: the logits (B, K), the targets and the scores (B, R, Cc), row-major like Z's cells.
    public func attribution(_ z: Tensor, targets choose: (Tensor) -> [Int]) -> (logits: Tensor, targets: [Int], scores: Tensor) {
        let ctx = Context(training: false, recordForBackward: true, precision: precision)
        let logits = head.forward(z, ctx)
        let targets = choose(logits)
        let b = z.shape[0], c = z.shape[1], cells = z.shape[2] * z.shape[3], k = logits.shape[1]
        let dLogits = Tensor(shape: logits.shape)
        // A negative target (ordinal outputs, whose bins are not classes) attributes the sum of the logits.
        for i in 0 ..< b {
            if targets[i] >= 0 { dLogits.pointer[i * k + targets[i]] = 1 } else { for j in 0 ..< k { dLogits.pointer[i * k + j] = 1 } }
        }
        let dz = head.backward(dLogits, ctx)
        head.store.zeroGradients()
        let scores = Tensor(shape: [b, z.shape[2], z.shape[3]])
        let zp = z.pointer, dp = dz.pointer, sp = scores.pointer
        for i in 0 ..< b {
            for ch in 0 ..< c {
                let base = (i * c + ch) * cells
                for cell in 0 ..< cells { sp[i * cells + cell] += zp[base + cell] * dp[base + cell] }
            }
        }
        return (logits, targets, scores)
    }

    /// Occlusion on Z, the check of `attribution`: for each of one image's `cells`, the drop of the `target` logit
    /// when that cell's latent vector is zeroed (as an absent patch is), in batches of `batch` occluded copies.
    public func occlusion(_ z: Tensor, image: Int, cells: [Int], target: Int, batch: Int = 32) -> [Float] {
        let pick = { (logits: Tensor, row: Int) -> Float in
            target >= 0 ? logits.pointer[row * self.head.outputs + target] : (0 ..< self.head.outputs).reduce(0) { $0 + logits.pointer[row * self.head.outputs + $1] }
        }
        let c = z.shape[1], plane = z.shape[2] * z.shape[3]
        let ctx = Context(training: false, recordForBackward: false, precision: precision)
        let one = Tensor(shape: [1, c, z.shape[2], z.shape[3]])
        one.pointer.update(from: z.pointer + image * c * plane, count: c * plane)
        let base = pick(head.forward(one, ctx), 0)
        var drops: [Float] = []
        for start in stride(from: 0, to: cells.count, by: batch) {
            let group = Array(cells[start ..< min(cells.count, start + batch)])
            let copies = Tensor(shape: [group.count, c, z.shape[2], z.shape[3]])
            for (j, cell) in group.enumerated() {
                let dst = copies.pointer + j * c * plane
                dst.update(from: one.pointer, count: c * plane)
                for ch in 0 ..< c { dst[ch * plane + cell] = 0 }
            }
            let logits = head.forward(copies, ctx)
            for j in group.indices { drops.append(base - pick(logits, j)) }
        }
        return drops
    }

    // MARK: Z bookkeeping

    /// Some cells of one image of the batch; a backbone batch is a list of pieces, encoded in order.
    typealias Piece = (image: Int, cells: [Int])

    /// The pieces' patches stacked in order, (sum of cells, 3, P, P).
    static func gather(_ pieces: [Piece], _ patches: PatchProvider) throws -> Tensor {
        concatenate(try pieces.map { try patches($0.image, $0.cells) })
    }

    /// Writes the features of a backbone batch of `pieces` (in order) into their cells of z.
    static func write(_ features: Tensor, pieces: [Piece], into z: Tensor, grids: [PatchGrid]) {
        var offset = 0
        for piece in pieces {
            write(features, from: offset, into: z, image: piece.image, cells: piece.cells, grid: grids[piece.image])
            offset += piece.cells.count
        }
    }

    /// Reads the gradients of `pieces`' cells from dz into a backbone batch's layout (the inverse of `write`).
    static func read(_ dz: Tensor, pieces: [Piece], into out: Tensor, grids: [PatchGrid]) {
        var offset = 0
        for piece in pieces {
            read(dz, into: out, at: offset, image: piece.image, cells: piece.cells, grid: grids[piece.image])
            offset += piece.cells.count
        }
    }

    /// The batch's patches in encoding order, cut into chunks of at most `size` patches that may span images, so small
    /// grids still make full backbone batches (and, with batch statistics, BatchNorm sees patches of many images).
    static func chunks(_ grids: [PatchGrid], size: Int) -> [[Piece]] {
        var chunks: [[Piece]] = [], current: [Piece] = [], filled = 0
        for (b, grid) in grids.enumerated() {
            var start = 0
            while start < grid.cells.count {
                let take = min(size - filled, grid.cells.count - start)
                current.append((b, Array(grid.cells[start ..< start + take])))
                filled += take; start += take
                if filled == size { chunks.append(current); current = []; filled = 0 }
            }
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// The j-th group of k cells of a shuffled order: the last group of a sweep is shorter; beyond one sweep the order
    /// wraps around when extra inner iterations were asked for, and is empty otherwise.
    static func group(_ j: Int, of order: [Int], k: Int, wrap: Bool) -> [Int] {
        let n = order.count, start = j * k
        guard n > 0 else { return [] }
        if start < n { return Array(order[start ..< min(n, start + k)]) }
        guard wrap else { return [] }
        return (0 ..< min(k, n)).map { order[(start + $0) % n] }
    }

    /// Z[b, :, row, col] = features[offset + i] for the i-th cell.
    static func write(_ features: Tensor, from offset: Int = 0, into z: Tensor, image b: Int, cells: [Int], grid: PatchGrid) {
        let (_, c, rows, cols) = z.nchw
        let pf = features.pointer, pz = z.pointer
        for (i, cell) in cells.enumerated() {
            let r = cell / grid.cols, col = cell % grid.cols
            for ch in 0 ..< c { pz[((b * c + ch) * rows + r) * cols + col] = pf[(offset + i) * c + ch] }
        }
    }

    /// out[offset + i] = dz[b, :, row, col] for the i-th cell.
    static func read(_ dz: Tensor, into out: Tensor, at offset: Int, image b: Int, cells: [Int], grid: PatchGrid) {
        let (_, c, rows, cols) = dz.nchw
        let pd = dz.pointer, po = out.pointer
        for (i, cell) in cells.enumerated() {
            let r = cell / grid.cols, col = cell % grid.cols
            for ch in 0 ..< c { po[(offset + i) * c + ch] = pd[((b * c + ch) * rows + r) * cols + col] }
        }
    }

    /// Stacks tensors of shape (n_i, ...) along the first axis.
    static func concatenate(_ parts: [Tensor]) -> Tensor {
        if parts.count == 1 { return parts[0] }
        let rest = Array(parts[0].shape.dropFirst())
        let out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + rest)
        var offset = 0
        for p in parts {
            (out.pointer + offset).update(from: p.pointer, count: p.count)
            offset += p.count
        }
        return out
    }
}
