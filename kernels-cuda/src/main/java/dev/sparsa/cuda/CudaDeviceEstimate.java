package dev.sparsa.cuda;

import dev.sparsa.backend.EstimatedPlan;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * The CUDA backend's {@link EstimatedPlan}: one of its {@link CudaDeviceEstimatedPlan}s behind the
 * backend-neutral type, so that the facade ({@code Attention.forward} on device tensors) estimates a
 * data-dependent pattern's selection on the GPU instead of planning it on the host. Each {@code
 * forward} is {@link CudaBackend#forward(CudaDeviceEstimatedPlan, Tensor, Tensor, Tensor, Tensor,
 * Tensor, RunOptions)}: queued on the calling thread's current stream when it made one current, else
 * run to completion.
 */
final class CudaDeviceEstimate extends EstimatedPlan {
    private final CudaBackend backend;
    private final CudaDeviceEstimatedPlan plan;

    CudaDeviceEstimate(CudaBackend backend, CudaDeviceEstimatedPlan plan, Device device) {
        super(plan.pattern(), plan.context(), backend, device);
        this.backend = backend;
        this.plan = plan;
    }

    @Override
    protected void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        backend.forward(plan, q, k, v, out, lse, options);
    }

    @Override
    public double visitedFractionBound() {
        return plan.visitedFractionBound();
    }

    @Override
    protected void release() {
        plan.close();
    }
}
