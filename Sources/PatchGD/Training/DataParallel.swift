import Cluster
import Foundation
import NN

/// How the ranks of a data-parallel run (`mpirun -np N gigapatch-train ...`) stay one model.
///
/// - Every rank builds the same model; rank 0's weights, buffers and optimizer state (initialised, `--init`, or
///   resumed) are then broadcast, so nothing else needs to agree at start.
/// - A mini-batch of `--batch-size` images, in the order the seed gives, is cut into N contiguous shares; each rank
///   trains on its share, scales its gradients by share / batch (its loss is the share's mean) and one all-reduce of
///   each model's contiguous gradient buffer sums them: the step one process would take on the whole batch. Every
///   rank then takes that same optimizer step, so the weights stay identical without being sent again.
/// - BatchNorm: each rank normalises with its own share's statistics (as PyTorch's DistributedDataParallel without
///   SyncBatchNorm), and its running statistics follow its share; they are averaged across ranks before every
///   validation and checkpoint. With `--batch-norm frozen` (or no BatchNorm) the run does not depend on N.
struct DataParallel {
    let comm: Communicator
    /// Seconds spent in the gradient all-reduces so far (for the epoch line and the benchmark).
    let clock = Stopwatch()

    var isActive: Bool { comm.size > 1 }

    /// This rank's contiguous share of `count` items (the first `count % N` ranks take one more).
    func share(of count: Int) -> Range<Int> { Self.share(of: count, rank: comm.rank, size: comm.size) }

    static func share(of count: Int, rank: Int, size: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let start = rank * base + min(rank, extra)
        return start ..< start + base + (rank < extra ? 1 : 0)
    }

    /// Rank 0's weights, running statistics, counters, optimizer moments and step counts, and trainer state, on every rank.
    func broadcast(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)], state: inout TrainerState) throws {
        guard isActive else { return }
        for part in parts {
            let store = part.model.store
            try comm.broadcast(UnsafeMutableRawBufferPointer(store.values))
            try comm.broadcast(UnsafeMutableRawBufferPointer(store.buffers))
            try store.counters.withUnsafeMutableBytes { try comm.broadcast($0) }
            if let optimizer = part.optimizer {
                try comm.broadcast(UnsafeMutableRawBufferPointer(optimizer.moment1))
                try comm.broadcast(UnsafeMutableRawBufferPointer(optimizer.moment2))
                var steps = Int64(optimizer.stepCount)
                try withUnsafeMutableBytes(of: &steps) { try comm.broadcast($0) }
                optimizer.stepCount = Int(steps)
            }
        }
        let bytes = try comm.broadcast(bytes: comm.isRoot ? Array(try JSONEncoder().encode(state)) : [])
        state = try JSONDecoder().decode(TrainerState.self, from: Data(bytes))
    }

    /// Scales each model's gradients by `weight` (share / batch) and sums them over the ranks.
    func sumGradients(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)], weight: Float) throws {
        guard isActive else { return }
        let start = Date()
        for part in parts {
            if weight != 1 { part.model.store.scaleGradients(weight) }
            try comm.allReduceSum(part.model.store.gradients)
        }
        clock.add(Date().timeIntervalSince(start))
    }

    /// Every rank's BatchNorm running statistics replaced by their mean over the ranks.
    func averageBuffers(_ parts: [(prefix: String, model: Model, optimizer: Optimizer?)]) throws {
        guard isActive else { return }
        for part in parts where part.model.store.bufferCount > 0 {
            let buffers = part.model.store.buffers
            try comm.allReduceSum(UnsafeMutableBufferPointer(rebasing: buffers[0 ..< part.model.store.bufferCount]))
            let inverse = 1 / Float(comm.size)
            for i in 0 ..< part.model.store.bufferCount { buffers[i] *= inverse }
        }
    }

    /// Sums of a few numbers over the ranks (losses, counts).
    func sum(_ values: [Double]) throws -> [Double] { try comm.allReduceSum(values) }
}

/// Accumulated seconds, shared by the copies of a value that holds it.
final class Stopwatch: @unchecked Sendable {
    private(set) var seconds = 0.0
    func add(_ s: Double) { seconds += s }
}
