package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.util.concurrent.ConcurrentHashMap;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;

/**
 * A loaded fatbin ({@code cuModuleLoadData}) and its kernels, looked up once by name. Each kernel's
 * dynamic shared-memory limit is raised to what its launches need. Unloaded by {@link #close()}.
 */
public final class CudaModule implements AutoCloseable {
    private final CudaDevice device;
    private final CUmodule module = new CUmodule();
    private final ConcurrentHashMap<String, CUfunction> functions = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /**
     * @throws CudaException naming {@code cuModuleLoadData} and the driver's error, e.g. {@code
     *     CUDA_ERROR_UNSUPPORTED_PTX_VERSION} or {@code CUDA_ERROR_NO_BINARY_FOR_GPU} on a driver too
     *     old for the fatbin or a chip it has no code for
     */
    public CudaModule(CudaDevice device, byte[] image) {
        this.device = device;
        device.makeCurrent();
        Cuda.check(cuModuleLoadData(module, image), "cuModuleLoadData");
    }

    /** The kernel {@code name}, with its dynamic shared memory limit set to {@code sharedBytes}. */
    CUfunction function(String name, int sharedBytes) {
        return function(name, sharedBytes, false);
    }

    /**
     * The kernel {@code name}, with its dynamic shared memory limit set to {@code sharedBytes}; with
     * {@code maxShared}, the L1/shared split is asked to give shared memory its largest share (so that
     * kernels sized for two CTAs per multiprocessor get them; the split is a hint to the driver).
     */
    CUfunction function(String name, int sharedBytes, boolean maxShared) {
        if (closed) {
            throw new IllegalStateException("module: already closed");
        }
        return functions.computeIfAbsent(name + "@" + sharedBytes + (maxShared ? "+max" : ""), key -> {
            device.makeCurrent();
            CUfunction f = new CUfunction();
            Cuda.check(cuModuleGetFunction(f, module, name), "cuModuleGetFunction", name);
            if (sharedBytes > 48 * 1024) {
                Cuda.check(cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                        sharedBytes), "cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)", name);
            }
            if (maxShared) {
                // CU_SHAREDMEM_CARVEOUT_MAX_SHARED: 100 % of the unified L1/shared memory as shared memory
                Cuda.check(cuFuncSetAttribute(f, CUfunction_attribute.CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT,
                        100), "cuFuncSetAttribute(PREFERRED_SHARED_MEMORY_CARVEOUT)", name);
            }
            return f;
        });
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            device.makeCurrent();
            Cuda.check(cuModuleUnload(module), "cuModuleUnload");
        }
    }
}
