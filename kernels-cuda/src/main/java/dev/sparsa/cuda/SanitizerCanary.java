package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;

/**
 * A deliberate out-of-bounds write, to prove that compute-sanitizer sees the kernels this JVM
 * launches: it runs {@code sparsa_merge} for one row of value dim 4096 into a 16-byte output buffer.
 * Under {@code compute-sanitizer --tool memcheck} the run must report "Invalid __global__ write";
 * without the sanitizer the write may land in unused memory or fail with an illegal address.
 * A diagnostic for kernels-cuda/bench/sanitize.sh; never called by the library.
 */
public final class SanitizerCanary {
    private SanitizerCanary() {
    }

    public static void main(String[] args) {
        CudaRuntime rt = CudaRuntime.open();
        CudaDevice dev = rt.device();
        try (DeviceBuffer ints = new DeviceBuffer(dev, 4 * 64);
             DeviceBuffer work = new DeviceBuffer(dev, 16);
             DeviceBuffer out = new DeviceBuffer(dev, 16);
             CudaStream stream = new CudaStream(dev)) {
            ints.copyFrom(new int[64]);
            work.copyFrom(new int[4]);
            long[] scalars = new long[24];
            scalars[15] = 1;     // qHeads
            scalars[16] = 1;     // group
            scalars[17] = 1;     // queryLength
            scalars[21] = 4096;  // valueDim: 16 KiB of output into a 16-byte buffer
            CUdeviceptr none = new CUdeviceptr();
            CUfunction f = rt.module().function("sparsa_merge", 0);
            Pointer params = Pointer.to(Pointer.to(none), Pointer.to(none), Pointer.to(out.pointer()), Pointer.to(none),
                    Pointer.to(ints.pointer()), Pointer.to(work.pointer()), Pointer.to(scalars));
            Cuda.check(cuLaunchKernel(f, 1, 1, 1, 256, 1, 1, 0, stream.handle(), params, null), "cuLaunchKernel", "sparsa_merge");
            stream.synchronize("sparsa_merge");
            System.out.println("canary: kernel returned without a fault (expected only without the sanitizer)");
        } catch (CudaException e) {
            System.out.println("canary: " + e.getMessage());
        }
    }
}
