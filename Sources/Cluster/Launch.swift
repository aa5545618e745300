import Foundation

/// How this process was started: alone, or as one rank of an MPI job (mpirun, or srun with PMI/PMIx).
public enum Launch: Equatable, Sendable {
    case single
    /// Started by a launcher that sets these; `rank` and `size` as the launcher reported them (checked against MPI's).
    case mpi(rank: Int, size: Int, launcher: String)

    /// Reads the variables launchers set: Open MPI's mpirun (`OMPI_COMM_WORLD_*`), PMIx (`PMIX_RANK` with Slurm's
    /// `SLURM_NTASKS` or Open MPI's size), PMI-2 (`PMI_RANK`, `PMI_SIZE`). `GIGAPATCH_MPI=0` forces one process,
    /// `GIGAPATCH_MPI=1` forces MPI (a launcher this does not know). Pure, so it is tested without a launcher.
    public static func detect(_ environment: [String: String]) -> Launch {
        let force = environment["GIGAPATCH_MPI"]
        if force == "0" { return .single }
        func int(_ name: String) -> Int? { environment[name].flatMap { Int($0) } }
        if let rank = int("OMPI_COMM_WORLD_RANK"), let size = int("OMPI_COMM_WORLD_SIZE") {
            return .mpi(rank: rank, size: size, launcher: "mpirun")
        }
        if let rank = int("PMIX_RANK"), let size = int("SLURM_NTASKS") ?? int("OMPI_COMM_WORLD_SIZE") ?? int("PMIX_SIZE") {
            return .mpi(rank: rank, size: size, launcher: environment["SLURM_JOB_ID"] != nil ? "srun (PMIx)" : "PMIx")
        }
        if let rank = int("PMI_RANK"), let size = int("PMI_SIZE") {
            return .mpi(rank: rank, size: size, launcher: environment["SLURM_JOB_ID"] != nil ? "srun (PMI-2)" : "PMI-2")
        }
        if force == "1" { return .mpi(rank: 0, size: 0, launcher: "GIGAPATCH_MPI=1") }
        return .single
    }
}
