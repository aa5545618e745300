// swift-tools-version:6.1
// Gigapatch: train convolutional networks on gigapixel images (whole-slide images, UltraMNIST) on the CPU.
import Foundation
import PackageDescription

/// Every Swift target builds in Swift 6 language mode with warnings treated as bugs by CI (`scripts/test`).
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

/// Numeric targets are compiled for a modern CPU so SIMD code uses 256-bit registers and FMA: the compiler's default
/// x86-64 baseline (SSE2) splits each 16-float vector into four registers and spills them, several times slower.
/// haswell (AVX2 + FMA, x86-64-v3, 2013 onwards) keeps binaries portable; AVX-512 matrix kernels come from OpenBLAS at run
/// time. Override with GIGAPATCH_TARGET_CPU (e.g. "native", or "x86-64" for very old machines).
#if arch(x86_64)
let targetCPU = ProcessInfo.processInfo.environment["GIGAPATCH_TARGET_CPU"] ?? "haswell"
let numeric: [SwiftSetting] = strict + [.unsafeFlags(["-target-cpu", targetCPU])]
#else
let numeric: [SwiftSetting] = strict
#endif

let package = Package(
    name: "Gigapatch",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "gigapatch-inspect", targets: ["gigapatch-inspect"]),
        .executable(name: "gigapatch-synthetic", targets: ["gigapatch-synthetic"]),
        .executable(name: "gigapatch-ultramnist", targets: ["gigapatch-ultramnist"]),
        .executable(name: "gigapatch-ingest", targets: ["gigapatch-ingest"]),
        .executable(name: "gigapatch-bench", targets: ["gigapatch-bench"]),
        .executable(name: "gigapatch-train", targets: ["gigapatch-train"]),
        .executable(name: "gigapatch-split", targets: ["gigapatch-split"]),
        .executable(name: "gigapatch", targets: ["gigapatch"]),
        .executable(name: "gigapatch-predict", targets: ["gigapatch-predict"]),
        .executable(name: "gigapatch-stain", targets: ["gigapatch-stain"]),
        .library(name: "SlideIO", targets: ["SlideIO"]),
        .library(name: "PatchIndex", targets: ["PatchIndex"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C libraries: headers and links only (module.modulemap + shim.h, pkg-config names).
        .systemLibrary(name: "COpenSlide", pkgConfig: "openslide",
                       providers: [.apt(["libopenslide-dev"]), .brew(["openslide"])]),
        .systemLibrary(name: "CTIFF", pkgConfig: "libtiff-4",
                       providers: [.apt(["libtiff-dev"]), .brew(["libtiff"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"]), .brew(["openblas"])]),

        // bfloat16 matrix products on AVX512_BF16 (own kernels: Debian's OpenBLAS has no sbgemm); only the kernel
        // functions are compiled for AVX-512, callers check the CPU at run time.
        .target(name: "CBF16", cSettings: [.unsafeFlags(["-O3"])]),

        // oneDNN's direct bfloat16 convolutions, loaded with dlopen when present (own C code over oneDNN 2.x's C API;
        // its headers, from libdnnl-dev, are needed at build time for the support to be compiled in).
        .target(name: "CDNNL", linkerSettings: [.linkedLibrary("dl")]),

        // Open MPI, loaded with dlopen only under a launcher (own C code: the few calls Gigapatch makes, Open MPI's ABI).
        .target(name: "CMPI", linkerSettings: [.linkedLibrary("dl")]),

        // Thin wrappers: C calls in, one Swift error type per library out. No policy.
        // Cluster: the MPI communicator (rank, size, sums, broadcast, gather) and a work queue; a one-process
        // stand-in when no launcher started the process. (Not called "Distributed": Swift has a module of that name.)
        .target(name: "Cluster", dependencies: ["CMPI", "Basics"], swiftSettings: strict),
        .target(name: "SlideIO", dependencies: ["COpenSlide", "CTIFF", "CZlib", "CPNG", "CJPEG", "Basics"], swiftSettings: numeric),

        // Small shared pieces: seeded randomness, durable atomic file writes and error kinds (Foundation only).
        .target(name: "Seeded", swiftSettings: strict),
        .target(name: "Basics", swiftSettings: strict),
        .target(name: "Manifests", swiftSettings: strict),

        // Pure compute: tensors, layers, models, optimizers, safetensors. No slide or database I/O.
        .target(name: "NN", dependencies: ["CBLAS", "CBF16", "CDNNL", "Seeded", "Basics"], swiftSettings: numeric),

        // Stages.
        // The training configuration is declared once as argument-parser option groups (TrainConfig), read from the
        // command line, config files (YAML) and options.json alike.
        .target(name: "PatchGD", dependencies: ["NN", "Cluster", "Seeded", "SlideIO", "PatchIndex", "Basics", "Stain", "Tissue", "Ingest", "Report",
                                                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                                .product(name: "Yams", package: "Yams")], swiftSettings: strict),
        .target(name: "Ingest", dependencies: ["Cluster", "SlideIO", "Tissue", "PatchIndex", "Manifests", "Basics"],
                resources: [.copy("Presets")], swiftSettings: strict),
        .target(name: "Splits", dependencies: ["PatchIndex", "Manifests", "Seeded", "Basics"], swiftSettings: strict),
        .target(name: "Pipeline", dependencies: ["Basics", .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),
        .target(name: "UltraMNIST", dependencies: ["SlideIO", "Seeded", "CZlib", "Manifests", "Basics"], swiftSettings: numeric),

        // Services.
        .target(name: "Tissue", dependencies: ["SlideIO"], swiftSettings: numeric),
        // Stain normalisation (Macenko, Reinhard) and HED augmentation on RGB patches: pure compute.
        .target(name: "Stain", swiftSettings: numeric),
        // The run report (report.html): learning curves, confusion matrix, provenance, predictions, QC; no outside host.
        .target(name: "Report", dependencies: ["Basics"], swiftSettings: strict),
        .target(name: "PatchIndex", dependencies: ["Basics", .product(name: "GRDB", package: "GRDB.swift")],
                swiftSettings: strict),

        // Command-line pieces the executables share (output, JSON lines, reports).
        .target(name: "GigapatchCLI", dependencies: ["SlideIO", "CBLAS"], swiftSettings: strict),

        // Executables: argument parsing only.
        .executableTarget(name: "gigapatch-inspect",
                          dependencies: ["GigapatchCLI", "SlideIO",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-synthetic",
                          dependencies: ["SlideIO", "TestSupport", "Seeded",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-ultramnist",
                          dependencies: ["UltraMNIST", "GigapatchCLI",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-ingest",
                          dependencies: ["Ingest", "Cluster", "GigapatchCLI", "Basics",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch",
                          dependencies: ["Pipeline", "Report", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-split",
                          dependencies: ["Splits", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-train",
                          dependencies: ["PatchGD", "GigapatchCLI", "Cluster",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-predict",
                          dependencies: ["PatchGD", "Cluster", "GigapatchCLI",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-stain",
                          dependencies: ["PatchGD", "GigapatchCLI", "Stain", "SlideIO",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        .executableTarget(name: "gigapatch-bench",
                          dependencies: ["SlideIO", "Cluster", "PatchIndex", "GigapatchCLI", "NN", "Seeded", "PatchGD", "Stain",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // Test support: synthetic pyramidal slides, temporary folders, shared-data lookup.
        .target(name: "TestSupport", dependencies: ["SlideIO", "Seeded", "CZlib"], swiftSettings: strict),

        .testTarget(name: "SlideIOTests", dependencies: ["SlideIO", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "PatchIndexTests", dependencies: ["PatchIndex", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "UltraMNISTTests", dependencies: ["UltraMNIST", "Manifests", "SlideIO", "Seeded", "TestSupport"],
                    swiftSettings: strict),
        .testTarget(name: "IngestTests", dependencies: ["Ingest", "PatchIndex", "Manifests", "SlideIO", "Tissue", "UltraMNIST", "TestSupport",
                                                        .product(name: "GRDB", package: "GRDB.swift")],
                    swiftSettings: strict),
        .testTarget(name: "PatchGDTests", dependencies: ["PatchGD", "NN", "Seeded", "SlideIO", "PatchIndex", "Ingest", "UltraMNIST",
                                                         "Manifests", "TestSupport"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "NNTests", dependencies: ["NN", "Seeded"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "PatchIndex", "Manifests", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "TissueTests", dependencies: ["Tissue", "SlideIO", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "ManifestsTests", dependencies: ["Manifests"], swiftSettings: strict),
        .testTarget(name: "BasicsTests", dependencies: ["Basics"], swiftSettings: strict),
        .testTarget(name: "ReportTests", dependencies: ["Report", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "StainTests", dependencies: ["Stain", "SlideIO", "TestSupport"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "SplitsTests", dependencies: ["Splits"], swiftSettings: strict),
        .testTarget(name: "GigapatchCLITests", dependencies: ["GigapatchCLI", "SlideIO", "TestSupport"],
                    swiftSettings: strict),
    ]
)
