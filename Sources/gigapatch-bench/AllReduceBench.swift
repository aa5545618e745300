import ArgumentParser
import Cluster
import Foundation

/// `mpirun -np N gigapatch-bench allreduce`: the gradient sum alone, on a buffer of a model's size, and a check that
/// every rank gets the sum. Rank 0 prints one JSON line: seconds per all-reduce (best of the repeats), the bus
/// bandwidth it implies for a ring (2 (N-1)/N x bytes / seconds) and the latency of a one-float sum.
struct AllReduceBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time the all-reduce of a float buffer across MPI ranks (run under mpirun); one JSON line from rank 0.")

    @Option(help: "Floats in the buffer (resnet18: 11.2 million, resnet50: 23.5 million).") var floats: Int = 11_200_000
    @Option(help: "Timed all-reduces (the fastest counts).") var repeats: Int = 5

    func run() throws {
        let comm = try Communicator.world()
        guard comm.size > 1 else { throw ValidationError("run under mpirun with 2 or more ranks (mpirun -np 2 gigapatch-bench allreduce)") }
        let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        var best = Double.infinity
        for _ in 0 ..< repeats {
            for i in 0 ..< floats { buffer[i] = Float(comm.rank + 1) + Float(i % 7) }
            try comm.barrier()
            let start = Date()
            try comm.allReduceSum(buffer)
            best = min(best, Date().timeIntervalSince(start))
        }
        // Sum over ranks r of (r + 1 + i % 7) = N (N + 1) / 2 + N (i % 7).
        let n = Float(comm.size)
        let wrong = (0 ..< floats).first { buffer[$0] != n * (n + 1) / 2 + n * Float($0 % 7) }
        if let wrong { comm.abort("all-reduce gave \(buffer[wrong]) at \(wrong)", program: "gigapatch-bench allreduce") }
        let one = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
        defer { one.deallocate() }
        var latency = Double.infinity
        for _ in 0 ..< 50 {
            one[0] = 1
            let start = Date()
            try comm.allReduceSum(one)
            latency = min(latency, Date().timeIntervalSince(start))
        }
        guard comm.isRoot else { return }
        let bytes = Double(floats * 4)
        let line: [String: Any] = ["mode": "allreduce", "ranks": comm.size, "floats": floats, "seconds": best,
                                   "bus_gb_per_s": 2 * Double(comm.size - 1) / Double(comm.size) * bytes / best / 1e9,
                                   "latency_us": latency * 1e6, "checked": true]
        print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]), as: UTF8.self))
    }
}
