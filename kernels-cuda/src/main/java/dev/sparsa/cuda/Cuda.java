package dev.sparsa.cuda;

import jcuda.driver.CUresult;

/** Turns CUDA driver return codes into {@link CudaException}s that name the call and the kernel. */
final class Cuda {
    private Cuda() {
    }

    /** Throws unless {@code result} is {@code CUDA_SUCCESS}. */
    static void check(int result, String call) {
        check(result, call, null);
    }

    /** Throws unless {@code result} is {@code CUDA_SUCCESS}; {@code kernel} may be null. */
    static void check(int result, String call, String kernel) {
        if (result != CUresult.CUDA_SUCCESS) {
            throw new CudaException(call, kernel, result, CUresult.stringFor(result));
        }
    }
}
