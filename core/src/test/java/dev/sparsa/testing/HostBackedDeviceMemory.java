package dev.sparsa.testing;

import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.DeviceMemory;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A stand-in accelerator memory (shipped in sparsa-core's test-jar): bytes in a host segment that the
 * code under test reaches only through the copies of {@link DeviceMemory}, so device tensors and
 * device index tensors can be tested without a GPU. {@link #address()} is the segment's address
 * (0 for a segment over a Java array); {@link #release()} frees nothing and only records the call.
 *
 * <p>Not thread-safe.
 */
public final class HostBackedDeviceMemory implements DeviceMemory {
    private final Device device;
    private final MemorySegment bytes;
    private boolean released;

    /** {@code size} bytes (at least 1) of fresh native memory, reported as on {@code device}. */
    public HostBackedDeviceMemory(Device device, long size) {
        this(device, Arena.ofAuto().allocate(Math.max(size, 1)));
    }

    /** The bytes of {@code bytes} (not copied), reported as on {@code device}. */
    public HostBackedDeviceMemory(Device device, MemorySegment bytes) {
        this.device = device;
        this.bytes = bytes;
    }

    /** Whether {@link #release()} was called. */
    public boolean released() {
        return released;
    }

    @Override
    public Device device() {
        return device;
    }

    @Override
    public long byteSize() {
        return bytes.byteSize();
    }

    @Override
    public long address() {
        return bytes.address();
    }

    @Override
    public void copyFromHost(MemorySegment src, long at) {
        MemorySegment.copy(src, 0, bytes, at, src.byteSize());
    }

    @Override
    public void copyToHost(MemorySegment dst, long at) {
        MemorySegment.copy(bytes, at, dst, 0, dst.byteSize());
    }

    @Override
    public void release() {
        released = true;
    }
}
