package dev.sparsa.cuda;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * Device tensors: {@link Tensor}s over CUDA memory, which the facade ({@code Attention}) and {@link
 * CudaBackend} run on without copying and which Java code reads back with {@link Tensor#toHost()}
 * or {@link Tensor#copy(Tensor, Tensor)}.
 *
 * <p>{@link #allocate} and {@link #upload} return tensors that own their memory: close them (they
 * are {@link AutoCloseable}). Their memory comes from the device's cache of blocks and goes back to
 * it on close, after the device has finished the work queued before (as {@code cuMemFree} waits);
 * {@link CudaDevice#releaseCachedMemory()} frees the cache. {@link #wrap} puts a view over memory
 * another library allocated (PyTorch's {@code tensor.data_ptr()}, JCuda's {@code cuMemAlloc},
 * JavaCPP) by its address; closing that view frees nothing.
 *
 * <p>e4m3 tensors keep their scales on the host side of the view ({@link Tensor#scale(int)}): an
 * upload carries the host tensor's, an allocated one starts at scale 1 ({@link Tensor#withScales}
 * gives others). The kernels read them at each call; e4m3 runs on the prefill kernel of compute
 * capability 9.0 ({@code KernelChoice}), not in decode.
 */
public final class CudaTensors {
    private CudaTensors() {
    }

    /**
     * A new zero-filled contiguous tensor on {@code device}.
     *
     * @throws IllegalArgumentException if a size is out of range
     * @throws CudaException if the device has not enough memory
     */
    public static Tensor allocate(CudaDevice device, DType dtype, Layout layout, int batch, int heads, int seq, int dim) {
        return allocate(device, dtype, layout, batch, heads, seq, dim, (Byte) (byte) 0);
    }

    /**
     * As {@link #allocate}, every byte set to {@code fill} (0xFF makes every element a NaN), or left
     * as the memory held it when {@code fill} is null (for outputs a kernel overwrites).
     */
    static Tensor allocate(CudaDevice device, DType dtype, Layout layout, int batch, int heads, int seq, int dim,
                           Byte fill) {
        return allocate(device, dtype, layout, batch, heads, seq, dim, fill, null);
    }

    /** As {@link #allocate(CudaDevice, DType, Layout, int, int, int, int, Byte)}, an e4m3 tensor with {@code scales}. */
    static Tensor allocate(CudaDevice device, DType dtype, Layout layout, int batch, int heads, int seq, int dim,
                           Byte fill, float[] scales) {
        if (device == null || dtype == null || layout == null) {
            throw new IllegalArgumentException("device, dtype and layout: must not be null");
        }
        if (batch < 1 || heads < 1 || seq < 0 || dim < 1) {
            throw new IllegalArgumentException("shape: need batch >= 1, heads >= 1, seq >= 0, dim >= 1, got [" + batch + ", "
                    + heads + ", " + seq + ", " + dim + "]");
        }
        long bytes = Math.multiplyExact(Math.multiplyExact((long) batch * heads, (long) seq) * dim, (long) dtype.byteSize());
        DeviceBuffer buf = DeviceBuffer.cached(device, bytes);
        try {
            if (fill != null) {
                buf.fill(fill);
            }
            return scales == null ? Tensor.onDevice(buf, dtype, layout, batch, heads, seq, dim)
                    : Tensor.onDeviceStrided(buf, dtype, new int[] {batch, heads, seq, dim},
                            layout.strides(batch, heads, seq, dim), scales);
        } catch (RuntimeException e) {
            buf.close();
            throw e;
        }
    }

    /**
     * A new device tensor with the host tensor's shape, dtype and strides, holding a copy of its
     * values (only the span its view reaches is copied), and for e4m3 its scales.
     *
     * @throws IllegalArgumentException for a device tensor
     */
    public static Tensor upload(CudaDevice device, Tensor host) {
        if (device == null || host == null) {
            throw new IllegalArgumentException("device and host: must not be null");
        }
        if (!host.isHost()) {
            throw new IllegalArgumentException("host: " + host + " is not a host tensor");
        }
        DeviceBuffer buf = DeviceBuffer.cached(device, host.spanBytes());
        try {
            Tensor t = wrapOwned(buf, host);
            Tensor.copy(host, t);
            return t;
        } catch (RuntimeException e) {
            buf.close();
            throw e;
        }
    }

    /** A tensor with {@code like}'s shape, dtype and strides at offset 0 of {@code buf}, owning it. */
    private static Tensor wrapOwned(DeviceBuffer buf, Tensor like) {
        return Tensor.onDeviceStrided(buf, like.dtype(), like.shape(), like.strides(),
                like.dtype().isScaled() ? like.scales() : null);
    }

    /**
     * A view over CUDA memory of another library: {@code bytes} bytes at device address {@code
     * address} on {@code device}'s context, with element strides and offset. Sparsa never frees it;
     * it must stay allocated while the view is used.
     *
     * @throws IllegalArgumentException if the address is 0 or the view reaches past {@code bytes}
     */
    public static Tensor wrap(CudaDevice device, long address, long bytes, DType dtype, int[] shape, long[] strides,
                              long offset) {
        if (device == null) {
            throw new IllegalArgumentException("device: must not be null");
        }
        return Tensor.wrapDevice(DeviceBuffer.foreign(device, address, bytes), dtype, shape, strides, offset);
    }

    /**
     * A contiguous view in {@code layout} over CUDA memory of another library ({@code bytes} bytes at
     * {@code address}); closing it frees nothing.
     *
     * @throws IllegalArgumentException if the address is 0 or the shape needs more than {@code bytes}
     */
    public static Tensor wrap(CudaDevice device, long address, long bytes, DType dtype, Layout layout, int batch,
                              int heads, int seq, int dim) {
        if (layout == null) {
            throw new IllegalArgumentException("layout: must not be null");
        }
        return wrap(device, address, bytes, dtype, new int[] {batch, heads, seq, dim},
                layout.strides(batch, heads, seq, dim), 0);
    }

    /**
     * The CUDA buffer behind a device tensor.
     *
     * @throws IllegalArgumentException naming the tensor when it is not on a CUDA device of this backend
     */
    static DeviceBuffer buffer(String name, Tensor t) {
        if (t.isHost() || !(t.deviceMemory() instanceof DeviceBuffer b)) {
            throw new IllegalArgumentException(name + ": " + t + " is not in CUDA memory of this backend");
        }
        return b;
    }

    /**
     * The device address of a device tensor's first element (its buffer's address plus its byte offset).
     *
     * @throws IllegalArgumentException naming the tensor when it is not on a CUDA device of this backend
     */
    static long address(String name, Tensor t) {
        return buffer(name, t).address() + t.byteOffset();
    }
}
