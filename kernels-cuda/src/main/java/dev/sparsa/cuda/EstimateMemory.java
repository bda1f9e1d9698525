package dev.sparsa.cuda;

import java.lang.ref.Cleaner;
import java.util.List;

/**
 * The device memory of one {@link CudaDeviceEstimatedPlan}: its {@link DevicePlan} and the scratch
 * buffers its estimate kernels write, in the order the plan kind lists them. {@link #run()} closes
 * them all; it is the plan's cleaner action, so it holds the memory and never the plan.
 */
final class EstimateMemory implements Runnable {
    /** One cleaner for every device-estimated plan. */
    static final Cleaner CLEANER = Cleaner.create();

    private final DevicePlan plan;
    private final DeviceBuffer[] buffers;

    EstimateMemory(DevicePlan plan, DeviceBuffer... buffers) {
        this.plan = plan;
        this.buffers = buffers.clone();
    }

    DevicePlan plan() {
        return plan;
    }

    /** The {@code i}-th scratch buffer (0-based, after the plan). */
    DeviceBuffer buffer(int i) {
        return buffers[i];
    }

    /** Device bytes held: the plan and every buffer. */
    long bytes() {
        long n = plan.deviceBytes();
        for (DeviceBuffer b : buffers) {
            n += b.bytes();
        }
        return n;
    }

    @Override
    public void run() {
        closeQuietly(plan);
        closeQuietly(buffers);
    }

    /**
     * What a plan's constructor that failed half-way had allocated: the device plan if it was made
     * (it owns the pools and work lists), else the pools and work lists; then the buffers. Nulls are
     * skipped.
     */
    static void abandon(DevicePlan plan, DeviceBuffer ints, DeviceBuffer floats, List<DevicePlan.WorkList> lists,
                        DeviceBuffer... buffers) {
        if (plan != null) {
            closeQuietly(plan);
        } else {
            closeQuietly(ints, floats);
            for (DevicePlan.WorkList w : lists) {
                closeQuietly(w.buffer());
            }
        }
        closeQuietly(buffers);
    }

    private static void closeQuietly(AutoCloseable... parts) {
        for (AutoCloseable c : parts) {
            if (c != null) {
                try {
                    c.close();
                } catch (Exception ignored) {
                    // device memory: nothing more to do
                }
            }
        }
    }
}
