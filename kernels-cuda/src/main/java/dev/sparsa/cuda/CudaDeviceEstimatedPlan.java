package dev.sparsa.cuda;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.Tensor;

/**
 * A data-dependent plan whose selection the CUDA backend estimates on the device at each call: the
 * skeleton of its device plan is built on the host from the shape alone, and each {@link
 * CudaBackend#forward(CudaDeviceEstimatedPlan, dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor,
 * dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor, dev.sparsa.tensor.Tensor,
 * dev.sparsa.spec.RunOptions)} queues, before the attention kernel, the kernels that fill it from
 * that call's Q and K, with nothing copied back. One kind per pattern: {@link CudaEstimatedPlan}
 * ({@code MeanPoolBlockTopK}), {@link CudaVsEstimatedPlan} ({@code VerticalSlashEstimator}), {@link
 * CudaTopKEstimatedPlan} (pooled {@code TopKPerQueryBlock}); each selects bit for bit what its CPU
 * twin selects.
 *
 * <p>Its device memory is reused by every call, so calls with one plan must be ordered on one
 * stream (or waited for in between). Closing it frees that memory (a plan collected unclosed is
 * freed by a cleaner); running a closed plan throws {@link IllegalStateException}.
 */
public abstract sealed class CudaDeviceEstimatedPlan implements AutoCloseable
        permits CudaEstimatedPlan, CudaVsEstimatedPlan, CudaTopKEstimatedPlan {
    private volatile boolean closed;

    CudaDeviceEstimatedPlan() {
    }

    /** The pattern whose selection each call estimates. */
    public abstract Pattern pattern();

    /** The context the plan was built for. */
    public abstract PlanContext context();

    /** Device memory the plan holds, in bytes. */
    public abstract long deviceBytes();

    /** The runtime (device, module) the plan lives on. */
    abstract CudaRuntime runtime();

    /** The device plan the estimate fills and the attention kernel reads. */
    abstract DevicePlan devicePlan();

    /** Queues the estimate's kernels on {@code stream}: they fill {@link #devicePlan()} from Q and K. */
    abstract void queueEstimate(Tensor q, Tensor k, CudaStream stream);

    /** The estimate's kernel names joined by {@code +}, for {@code CudaBackend.lastKernel()}. */
    abstract String kernels();

    /** Frees the device memory; called once, by {@link #close()}. */
    abstract void release();

    /**
     * Throws unless open.
     *
     * @throws IllegalStateException once closed
     */
    final void requireOpen() {
        if (closed) {
            throw new IllegalStateException("estimated plan: " + this + " is closed");
        }
    }

    /** Frees the device memory (idempotent). */
    @Override
    public final void close() {
        if (!closed) {
            closed = true;
            release();
        }
    }
}
