package dev.sparsa.cuda;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Device;
import java.lang.ref.Cleaner;

/**
 * A plan uploaded to one CUDA device ({@link DevicePlan}) by {@link CudaBackend#prepare}. Closing it
 * frees the device memory; a prepared plan that is collected unclosed is freed by a cleaner.
 */
final class CudaPreparedPlan extends PreparedPlan {
    private static final Cleaner CLEANER = Cleaner.create();

    private final CudaRuntime runtime;
    private final DevicePlan devicePlan;
    private final Cleaner.Cleanable cleanable;

    CudaPreparedPlan(SparsePlan plan, CudaBackend backend, Device device, CudaRuntime runtime, DevicePlan devicePlan) {
        super(plan, backend, device);
        this.runtime = runtime;
        this.devicePlan = devicePlan;
        // the action holds the device plan only, never this object, so that the cleaner can run
        this.cleanable = CLEANER.register(this, devicePlan::close);
    }

    CudaRuntime runtime() {
        return runtime;
    }

    DevicePlan devicePlan() {
        requireOpen();
        return devicePlan;
    }

    @Override
    public long preparedBytes() {
        return isOpen() ? devicePlan.deviceBytes() : 0;
    }

    @Override
    protected void release() {
        cleanable.clean();
    }
}
