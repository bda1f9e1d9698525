package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuStreamCreate;
import static jcuda.driver.JCudaDriver.cuStreamDestroy;
import static jcuda.driver.JCudaDriver.cuStreamSynchronize;

import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;

/**
 * A CUDA stream on a device's primary context. It is a blocking stream (it orders with the legacy
 * default stream, on which this package's synchronous copies run). Destroyed by {@link #close()}.
 */
public final class CudaStream implements AutoCloseable {
    private final CudaDevice device;
    private final CUstream stream = new CUstream();
    private boolean closed;

    public CudaStream(CudaDevice device) {
        this.device = device;
        device.makeCurrent();
        Cuda.check(cuStreamCreate(stream, CUstream_flags.CU_STREAM_DEFAULT), "cuStreamCreate");
    }

    CUstream handle() {
        if (closed) {
            throw new IllegalStateException("stream: already closed");
        }
        return stream;
    }

    /** Waits for everything queued on this stream; a failed kernel surfaces here as a CudaException. */
    public void synchronize(String kernel) {
        device.makeCurrent();
        Cuda.check(cuStreamSynchronize(handle()), "cuStreamSynchronize", kernel);
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            device.makeCurrent();
            Cuda.check(cuStreamDestroy(stream), "cuStreamDestroy");
        }
    }
}
