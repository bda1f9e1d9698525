package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import java.util.HashMap;
import java.util.Map;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

/**
 * A CUDA stream on a device's primary context: one this class creates (a blocking stream, ordered
 * with the legacy default stream; destroyed by {@link #close()}), or one another library made,
 * wrapped by its handle ({@link #wrap(CudaDevice, long)}: PyTorch's {@code
 * torch.cuda.current_stream().cuda_stream}, CuPy's {@code Stream.ptr}; {@link #wrap(CudaDevice,
 * CUstream)}: a JCuda stream), which {@link #close()} leaves alone. A wrapped stream must belong to
 * the device's primary context (the one PyTorch and the CUDA runtime use).
 *
 * <p>{@link #use()} makes a stream the calling thread's stream for its device, as PyTorch's {@code
 * with torch.cuda.stream(s):} does: until the returned scope is closed, {@link CudaBackend} queues
 * the work of calls on that device on it (for device tensors without waiting, so that the caller
 * orders it with its own work on the same stream).
 */
public final class CudaStream implements AutoCloseable {
    /** Per thread: device ordinal to the stream calls on that device use. */
    private static final ThreadLocal<Map<Integer, CudaStream>> CURRENT = ThreadLocal.withInitial(HashMap::new);

    private final CudaDevice device;
    private final CUstream stream;
    private final boolean owned;
    private volatile boolean closed;

    /** A new blocking stream on {@code device}. */
    public CudaStream(CudaDevice device) {
        if (device == null) {
            throw new IllegalArgumentException("device: must not be null");
        }
        this.device = device;
        this.stream = new CUstream();
        this.owned = true;
        device.makeCurrent();
        Cuda.check(cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT), "cuStreamCreate");
    }

    private CudaStream(CudaDevice device, CUstream stream) {
        this.device = device;
        this.stream = stream;
        this.owned = false;
    }

    /**
     * A stream another library created, by its raw {@code CUstream} handle on {@code device}'s
     * primary context; {@code 0} is the legacy default stream. Closing the returned object does not
     * destroy the stream; the stream must outlive its use here.
     *
     * @throws IllegalArgumentException if the device is null
     */
    public static CudaStream wrap(CudaDevice device, long handle) {
        if (device == null) {
            throw new IllegalArgumentException("device: must not be null");
        }
        return new CudaStream(device, JCudaHandles.stream(handle));
    }

    /**
     * A JCuda stream made elsewhere ({@code cuStreamCreate} on {@code device}'s primary context);
     * closing the returned object does not destroy it.
     *
     * @throws IllegalArgumentException if an argument is null
     */
    public static CudaStream wrap(CudaDevice device, CUstream stream) {
        if (device == null || stream == null) {
            throw new IllegalArgumentException("device and stream: must not be null");
        }
        return new CudaStream(device, stream);
    }

    /** The device the stream belongs to. */
    public CudaDevice device() {
        return device;
    }

    /** The raw {@code CUstream} handle (for passing to another library). */
    public long address() {
        return JCudaHandles.address(handle());
    }

    /** True when {@link #close()} destroys the stream (it was created here). */
    public boolean owned() {
        return owned;
    }

    CUstream handle() {
        if (closed) {
            throw new IllegalStateException("stream: already closed");
        }
        return stream;
    }

    /** Waits for everything queued on this stream; a failed kernel surfaces here as a CudaException. */
    public void synchronize() {
        synchronize(null);
    }

    /** As {@link #synchronize()}, naming {@code kernel} in the exception. */
    public void synchronize(String kernel) {
        device.makeCurrent();
        Cuda.check(cuStreamSynchronize(handle()), "cuStreamSynchronize", kernel);
    }

    /**
     * Makes this the calling thread's stream for its device until the returned scope closes (scopes
     * nest; closing one restores the stream before it).
     */
    public Scope use() {
        handle();
        Map<Integer, CudaStream> m = CURRENT.get();
        CudaStream previous = m.put(device.ordinal(), this);
        return new Scope(device.ordinal(), this, previous);
    }

    /** The stream {@link #use()} made current for this device on this thread, or null. */
    static CudaStream current(int ordinal) {
        return CURRENT.get().get(ordinal);
    }

    /** The span of {@link #use()}: closing it restores the thread's previous stream for the device. */
    public static final class Scope implements AutoCloseable {
        private final int ordinal;
        private final CudaStream stream;
        private final CudaStream previous;
        private boolean closed;

        private Scope(int ordinal, CudaStream stream, CudaStream previous) {
            this.ordinal = ordinal;
            this.stream = stream;
            this.previous = previous;
        }

        /**
         * @throws IllegalStateException if scopes are closed out of order (another scope opened
         *     later on this thread is still open)
         */
        @Override
        public void close() {
            if (closed) {
                return;
            }
            Map<Integer, CudaStream> m = CURRENT.get();
            if (m.get(ordinal) != stream) {
                throw new IllegalStateException("stream scope: closed out of order (a scope opened later is still open)");
            }
            closed = true;
            if (previous == null) {
                m.remove(ordinal);
            } else {
                m.put(ordinal, previous);
            }
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (owned) {
                CudaBackend.streamClosed(device.ordinal(), JCudaHandles.address(stream));
                device.makeCurrent();
                Cuda.check(cuStreamDestroy(stream), "cuStreamDestroy");
            }
        }
    }

    @Override
    public String toString() {
        return "CudaStream[cuda:" + device.ordinal() + (owned ? "" : ", wrapped") + "]";
    }
}
