import GigapatchCLI

// OpenBLAS chooses its kernels when it loads: re-execute with the AVX-512 ones first when the CPU has them.
BLASKernels.ensureBestKernels()
PredictCommand.main()
