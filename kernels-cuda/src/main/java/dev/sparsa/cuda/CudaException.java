package dev.sparsa.cuda;

/**
 * A CUDA driver call failed. The message names the driver call, the kernel it served (or "-" when
 * none) and the CUDA error name (e.g. {@code CUDA_ERROR_OUT_OF_MEMORY}); {@link #errorName()} and
 * {@link #errorCode()} give them separately.
 */
public final class CudaException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final String call;
    private final String kernel;
    private final String errorName;
    private final int errorCode;

    public CudaException(String call, String kernel, int errorCode, String errorName) {
        super(call + " failed" + (kernel == null ? "" : " for kernel " + kernel) + ": " + errorName + " (" + errorCode + ")");
        this.call = call;
        this.kernel = kernel == null ? "-" : kernel;
        this.errorName = errorName;
        this.errorCode = errorCode;
    }

    /** The driver call that failed, e.g. {@code cuLaunchKernel}. */
    public String call() {
        return call;
    }

    /** The kernel the call served, or "-". */
    public String kernel() {
        return kernel;
    }

    /** The driver's error name, e.g. {@code CUDA_ERROR_INVALID_VALUE}. */
    public String errorName() {
        return errorName;
    }

    /** The driver's numeric error code. */
    public int errorCode() {
        return errorCode;
    }
}
