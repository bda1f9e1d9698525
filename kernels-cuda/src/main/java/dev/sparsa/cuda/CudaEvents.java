package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuEventCreate;
import static jcuda.driver.JCudaDriver.cuEventDestroy;
import static jcuda.driver.JCudaDriver.cuEventElapsedTime;
import static jcuda.driver.JCudaDriver.cuEventRecord;
import static jcuda.driver.JCudaDriver.cuEventSynchronize;

import jcuda.driver.CUevent;

/**
 * A pair of CUDA events around work queued on a stream: {@link #start}, queue work, {@link #stop},
 * then {@link #millis()} waits for the stop event and returns the device time between the two.
 */
public final class CudaEvents implements AutoCloseable {
    private final CudaDevice device;
    private final CUevent begin = new CUevent();
    private final CUevent end = new CUevent();

    public CudaEvents(CudaDevice device) {
        this.device = device;
        device.makeCurrent();
        Cuda.check(cuEventCreate(begin, 0), "cuEventCreate");
        Cuda.check(cuEventCreate(end, 0), "cuEventCreate");
    }

    public void start(CudaStream stream) {
        device.makeCurrent();
        Cuda.check(cuEventRecord(begin, stream.handle()), "cuEventRecord");
    }

    public void stop(CudaStream stream) {
        device.makeCurrent();
        Cuda.check(cuEventRecord(end, stream.handle()), "cuEventRecord");
    }

    /** Milliseconds of device time between start and stop (waits for stop). */
    public float millis() {
        device.makeCurrent();
        Cuda.check(cuEventSynchronize(end), "cuEventSynchronize");
        float[] ms = new float[1];
        Cuda.check(cuEventElapsedTime(ms, begin, end), "cuEventElapsedTime");
        return ms[0];
    }

    @Override
    public void close() {
        device.makeCurrent();
        Cuda.check(cuEventDestroy(begin), "cuEventDestroy");
        Cuda.check(cuEventDestroy(end), "cuEventDestroy");
    }
}
