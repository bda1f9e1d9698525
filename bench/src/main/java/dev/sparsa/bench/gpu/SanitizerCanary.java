package dev.sparsa.bench.gpu;

import dev.sparsa.cuda.CudaBackend;
import dev.sparsa.cuda.CudaDevice;
import dev.sparsa.cuda.CudaTensors;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * A deliberate out-of-bounds write, to prove that compute-sanitizer sees the kernels this JVM
 * launches. It lies to the library the way a careless caller of {@link CudaTensors#wrap} could: it
 * allocates a 256-byte output buffer, then wraps its address as a 64-row × 256-column f32 output
 * (64 KiB) and runs dense attention into it. Under {@code compute-sanitizer --tool memcheck} the run
 * must report "Invalid __global__ write"; without the sanitizer the write may land in unused memory
 * or fail with an illegal address. Used by {@code kernels-cuda/bench/sanitize.sh}; never by the library.
 */
public final class SanitizerCanary {
    private SanitizerCanary() {
    }

    /**
     * Runs the canary on the CUDA backend's device.
     *
     * @param args ignored
     */
    public static void main(String[] args) {
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.out.println("canary: cuda backend unavailable: " + backend.availability().reason());
            System.exit(2);
        }
        CudaDevice dev = backend.device();
        int n = 64;
        int d = 256;
        try (Tensor q = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 1, n, d);
             Tensor small = CudaTensors.allocate(dev, DType.F32, Layout.BHSD, 1, 1, 1, 64)) {
            long address = small.deviceMemory().address();
            Tensor out = CudaTensors.wrap(dev, address, 4L * n * d, DType.F32, new int[] {1, 1, n, d},
                    new long[] {(long) n * d, (long) n * d, d, 1}, 0);
            Options o = Options.defaults().withGeometry(new dev.sparsa.spec.TileGeometry(64, 64));
            backend.forward(Dense.INSTANCE.plan(PlanContext.of(AttentionShape.of(1, 1, n, n, d), o)), q, q, q, out, null,
                    o.run());
            System.out.println("canary: kernel returned without a fault (expected only without the sanitizer)");
        } catch (RuntimeException e) {
            System.out.println("canary: " + e.getMessage());
        }
    }
}
