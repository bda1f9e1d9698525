package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuFuncGetAttribute;
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;

/**
 * The loaded kernel images ({@code cuModuleLoadData}, one CUDA module per image) and their kernels,
 * each looked up once by name in the image the kernel table {@code sparsa_kernels.def} names for it. Each
 * kernel's dynamic shared-memory limit is raised to what its launches need. Every image is loaded when
 * this is constructed, not on the first use of one of its kernels: a driver that refuses the images
 * (too old for their PTX, no code for the chip) is then reported by the availability probe instead of
 * failing a launch, and a kernel's lookup never loads anything; all images together are what the one
 * image of earlier builds was. Unloaded together by {@link #close()}.
 */
public final class CudaModule implements AutoCloseable {
    private static final Map<String, String> IMAGE_OF = KernelTable.KERNELS.stream()
            .collect(Collectors.toUnmodifiableMap(KernelTable.Kernel::name, KernelTable.Kernel::image));

    private final CudaDevice device;
    private final Map<String, CUmodule> modules = new LinkedHashMap<>();
    private final ConcurrentHashMap<String, CUfunction> functions = new ConcurrentHashMap<>();
    private volatile boolean closed;

    /**
     * Loads {@code images} (image name, one of {@link Fatbin#images()}, to its bytes) on {@code
     * device}. Kernels of images not given here cannot be looked up.
     *
     * @throws IllegalArgumentException if a name is not an image of the kernel table
     * @throws CudaException naming {@code cuModuleLoadData}, the image and the driver's error, e.g.
     *     {@code CUDA_ERROR_UNSUPPORTED_PTX_VERSION} or {@code CUDA_ERROR_NO_BINARY_FOR_GPU} on a driver
     *     too old for the images or a chip they have no code for; the images loaded before are unloaded
     */
    public CudaModule(CudaDevice device, Map<String, byte[]> images) {
        this.device = device;
        device.makeCurrent();
        try {
            images.forEach((name, image) -> {
                if (!KernelTable.IMAGES.contains(name)) {
                    throw new IllegalArgumentException("no kernel image " + name + "; the images are " + KernelTable.IMAGES);
                }
                CUmodule module = new CUmodule();
                Cuda.check(cuModuleLoadData(module, image), "cuModuleLoadData(" + name + ")");
                modules.put(name, module);
            });
        } catch (RuntimeException e) {
            try {
                unloadAll();
            } catch (RuntimeException unload) {
                e.addSuppressed(unload);
            }
            throw e;
        }
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
            String image = IMAGE_OF.get(name);
            if (image == null) {
                throw new IllegalArgumentException("kernel " + name + " is not in the kernel table (sparsa_kernels.def)");
            }
            CUmodule module = modules.get(image);
            if (module == null) {
                throw new IllegalStateException("kernel " + name + ": its image " + image + " is not loaded");
            }
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

    /** The most threads per block a launch of {@code f} (the kernel {@code name}) may use: its launch bounds. */
    int maxThreads(CUfunction f, String name) {
        int[] v = new int[1];
        Cuda.check(cuFuncGetAttribute(v, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, f),
                "cuFuncGetAttribute(MAX_THREADS_PER_BLOCK)", name);
        return v[0];
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            unloadAll();
        }
    }

    /** Unloads every loaded image; the first failure is thrown after all were tried. */
    private void unloadAll() {
        device.makeCurrent();
        RuntimeException first = null;
        for (Map.Entry<String, CUmodule> m : modules.entrySet()) {
            try {
                Cuda.check(cuModuleUnload(m.getValue()), "cuModuleUnload(" + m.getKey() + ")");
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                }
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
