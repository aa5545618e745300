import CBLAS
import Foundation

/// Makes OpenBLAS use its AVX-512 kernels when the CPU has them.
///
/// OpenBLAS picks its kernels once, when the library loads: from `OPENBLAS_CORETYPE` when set, otherwise from the
/// CPU it recognises. Either can leave AVX-512 hardware on AVX2 (Haswell) kernels at about half the speed: a
/// machine-wide `OPENBLAS_CORETYPE=Haswell` (as on our build machines), or a CPU too new for the installed
/// OpenBLAS (Debian's 0.3.21 and AMD Zen 4). Measured here: sgemm 120 GFLOP/s per core with Haswell kernels,
/// 221-229 with SkylakeX/Cooperlake ones. Since the choice cannot change after loading, a compute executable
/// calls `ensureBestKernels()` first: when the loaded kernels lack AVX-512 and the CPU reports the subsets
/// OpenBLAS's SkylakeX kernels use, it re-executes itself once with `OPENBLAS_CORETYPE=SkylakeX`.
/// `GIGAPATCH_KEEP_BLAS_KERNELS=1` keeps whatever OpenBLAS loaded.
public enum BLASKernels {
    /// The AVX-512 subsets OpenBLAS's SkylakeX kernels use.
    static let required: Set<String> = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
    /// OpenBLAS kernel families that already use AVX-512.
    static let avx512Families: Set<String> = ["skylakex", "cooperlake", "sapphirerapids"]
    static let guardVariable = "GIGAPATCH_BLAS_REEXECUTED"

    /// The kernel family OpenBLAS loaded (Haswell, SkylakeX, ...).
    public static var loaded: String { String(cString: openblas_get_corename()) }

    /// Whether this CPU reports every AVX-512 subset SkylakeX kernels need (Linux /proc/cpuinfo flags).
    public static func cpuSupportsSkylakeX() -> Bool {
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        return required.isSubset(of: Set(flags.split(separator: " ").map(String.init)))
    }

    /// Re-executes the process with SkylakeX kernels when that helps; returns when it does not apply or fails.
    public static func ensureBestKernels() {
        let env = ProcessInfo.processInfo.environment
        guard env["GIGAPATCH_KEEP_BLAS_KERNELS"] == nil, env[guardVariable] == nil,
              !avx512Families.contains(loaded.lowercased()), cpuSupportsSkylakeX() else { return }
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
        setenv(guardVariable, loaded, 1)
        var argv: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // execv returns only on failure: carry on with the kernels already loaded.
        if let previous = env["OPENBLAS_CORETYPE"] { setenv("OPENBLAS_CORETYPE", previous, 1) } else { unsetenv("OPENBLAS_CORETYPE") }
        unsetenv(guardVariable)
    }
}
