package dev.sparsa.cuda;

import dev.sparsa.backend.EstimatedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * The CUDA backend's {@link EstimatedPlan}: one of its device-estimated plans ({@link
 * CudaEstimatedPlan}, {@link CudaVsEstimatedPlan}, {@link CudaTopKEstimatedPlan}) behind the
 * backend-neutral type, so that the facade ({@code Attention.forward} on device tensors) estimates a
 * data-dependent pattern's selection on the GPU instead of planning it on the host. Each {@code
 * forward} is that plan's {@code CudaBackend.forward}: queued on the calling thread's current stream
 * when it made one current, else run to completion.
 */
final class CudaDeviceEstimate extends EstimatedPlan {
    /** One call of the wrapped plan's {@code CudaBackend.forward}. */
    @FunctionalInterface
    interface Forward {
        void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options);
    }

    private final AutoCloseable plan;
    private final Forward forward;

    CudaDeviceEstimate(CudaBackend backend, Pattern pattern, PlanContext context, Device device, AutoCloseable plan,
                       Forward forward) {
        super(pattern, context, backend, device);
        this.plan = plan;
        this.forward = forward;
    }

    @Override
    protected void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        forward.run(q, k, v, out, lse, options);
    }

    @Override
    protected void release() {
        try {
            plan.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing " + this + ": " + e.getMessage(), e);
        }
    }
}
