package dev.sparsa.tensor;

import java.lang.foreign.MemorySegment;

/**
 * A block of memory on an accelerator, as a backend implements it (the CUDA backend's device
 * buffers; a buffer of another library wrapped by its address). {@link Tensor#onDevice} and {@link
 * Tensor#wrapDevice} put a tensor view over it, so that device tensors go through the same facade,
 * SPI and argument checks as host tensors.
 *
 * <p>Copies are synchronous: when they return, the bytes have arrived. Implementations are
 * thread-safe for copies; {@link #release()} must not race with use.
 */
public interface DeviceMemory {

    /** The device holding the memory. */
    Device device();

    /** Size in bytes. */
    long byteSize();

    /** The device address of byte 0, for backends that launch kernels on it. */
    long address();

    /**
     * Copies all of {@code src} (host memory, heap or native) to bytes {@code [at, at + src.byteSize())}.
     *
     * @throws IllegalArgumentException if the range leaves this memory
     * @throws IllegalStateException if the memory was released
     */
    void copyFromHost(MemorySegment src, long at);

    /**
     * Copies bytes {@code [at, at + dst.byteSize())} into {@code dst} (host memory, heap or native).
     *
     * @throws IllegalArgumentException if the range leaves this memory
     * @throws IllegalStateException if the memory was released
     */
    void copyToHost(MemorySegment dst, long at);

    /** Frees the memory if this object owns it (idempotent); wrapped foreign memory is left alone. */
    void release();
}
