package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.CU_MEMHOSTALLOC_PORTABLE;
import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuStreamIsCapturing;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemHostAlloc;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoDAsync;

import java.nio.ByteOrder;
import java.nio.IntBuffer;
import jcuda.Pointer;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUstreamCaptureStatus;

/**
 * What one stream's decode calls reuse from step to step, so that a step queues only an
 * asynchronous copy of its metadata and its kernels (no allocation, no host wait, and so it can be
 * captured in a CUDA graph once the buffers have grown to the step's size): a pinned host buffer for
 * the metadata, and device buffers for the metadata, the split-KV partials, the merge tiles'
 * counters (zeroed once when allocated; every call leaves them zero) and Quest's scores. Work
 * on one stream runs in order, so reusing the device buffers is safe; the pinned buffer is rewritten
 * only after the previous step's copy from it has finished (an event).
 *
 * <p>A step captured in a graph copies its metadata from the pinned buffer at every replay: the
 * stream must not run other decode calls while such a graph is replayed. When a step needs larger
 * buffers, the stream is synchronized before the old ones are freed (so growth cannot happen during a
 * capture: run a step once before capturing it).
 * Used by one call at a time (the backend takes a lane from a pool, or the lane of the caller's
 * stream under a lock).
 */
final class DecodeLane {
    private final CudaDevice device;
    final CudaStream stream;
    private Pointer pinned;
    private IntBuffer pinnedInts;
    private long pinnedBytes;
    private final CUevent uploaded = new CUevent();
    private boolean uploadPending;
    private DeviceBuffer meta;
    private DeviceBuffer scratchO;
    private DeviceBuffer scratchLse;
    private DeviceBuffer scores;
    private DeviceBuffer mergeCounts;

    DecodeLane(CudaDevice device, CudaStream stream) {
        this.device = device;
        this.stream = stream;
        device.makeCurrent();
        Cuda.check(cuEventCreate(uploaded, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    }

    /**
     * Queues the copy of {@code ints} into the start of the lane's device metadata buffer, grown to
     * hold at least {@code deviceInts} ints (the rest is the kernels' to write), and returns that buffer.
     */
    DeviceBuffer upload(int[] ints, long deviceInts) {
        long bytes = 4L * Math.max(ints.length, 1);
        device.makeCurrent();
        if (uploadPending) {
            Cuda.check(cuEventSynchronize(uploaded), "cuEventSynchronize", "decode metadata");
            uploadPending = false;
        }
        if (pinnedBytes < bytes) {
            if (pinned != null) {
                Cuda.check(cuMemFreeHost(pinned), "cuMemFreeHost");
            }
            long size = Math.max(bytes, 64 << 10);
            pinned = new Pointer();
            Cuda.check(cuMemHostAlloc(pinned, size, CU_MEMHOSTALLOC_PORTABLE), "cuMemHostAlloc(" + size + " bytes)");
            pinnedBytes = size;
            pinnedInts = pinned.getByteBuffer(0, size).order(ByteOrder.nativeOrder()).asIntBuffer();
        }
        pinnedInts.clear();
        pinnedInts.put(ints);
        meta = grow(meta, 4L * Math.max(Math.max(ints.length, deviceInts), 1));
        Cuda.check(cuMemcpyHtoDAsync(meta.pointer(), pinned, 4L * ints.length, stream.handle()), "cuMemcpyHtoDAsync");
        int[] capturing = new int[1];
        Cuda.check(cuStreamIsCapturing(stream.handle(), capturing), "cuStreamIsCapturing");
        // a captured copy runs at each replay of the graph, reading the pinned buffer then: no event to wait for now
        if (capturing[0] == CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_NONE) {
            Cuda.check(cuEventRecord(uploaded, stream.handle()), "cuEventRecord");
            uploadPending = true;
        }
        return meta;
    }

    /** Frees the lane's buffers after its stream has drained (the stream itself is the caller's). */
    void close() {
        device.makeCurrent();
        try {
            stream.synchronize();
        } catch (RuntimeException ignored) {
            // a failed kernel was reported by its call; the buffers go anyway
        }
        for (DeviceBuffer b : new DeviceBuffer[] {meta, scratchO, scratchLse, scores, mergeCounts}) {
            if (b != null) {
                b.close();
            }
        }
        if (pinned != null) {
            Cuda.check(cuMemFreeHost(pinned), "cuMemFreeHost");
            pinned = null;
        }
        Cuda.check(cuEventDestroy(uploaded), "cuEventDestroy");
    }

    DeviceBuffer scratchO(long bytes) {
        scratchO = grow(scratchO, bytes);
        return scratchO;
    }

    DeviceBuffer scratchLse(long bytes) {
        scratchLse = grow(scratchLse, bytes);
        return scratchLse;
    }

    /**
     * At least {@code merges} merge counters, zero: a new buffer is zeroed on the stream before the
     * call that needs it; the decode kernels leave every counter they use at zero again.
     */
    DeviceBuffer mergeCounts(int merges) {
        DeviceBuffer b = grow(mergeCounts, 4L * merges);
        if (b != mergeCounts) {
            b.fill((byte) 0, stream);
            mergeCounts = b;
        }
        return b;
    }

    DeviceBuffer scores(long bytes) {
        scores = grow(scores, bytes);
        return scores;
    }

    /** {@code b} when it holds {@code bytes}, else a larger one (the stream drained before the old one goes). */
    private DeviceBuffer grow(DeviceBuffer b, long bytes) {
        if (b != null && b.bytes() >= bytes) {
            return b;
        }
        if (b != null) {
            stream.synchronize("decode");
            b.close();
        }
        return DeviceBuffer.scratch(device, Math.max(bytes, 4096) + (Math.max(bytes, 4096) >> 2));
    }
}
