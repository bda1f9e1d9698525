package dev.sparsa.backend;

import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Device;

/**
 * A {@link SparsePlan} in the form one backend runs it on one device: the plan uploaded to the
 * GPU, or the CPU's schedule of work items. Made by {@link AttentionBackend#prepare}, reused by
 * every later {@code forward} of that backend (every layer, every step), and closed by whoever
 * prepared it; {@code forward} on a closed plan throws {@link IllegalStateException}.
 *
 * <p>Thread-safe: concurrent {@code forward} calls may share one prepared plan; {@link #close()}
 * must not race with them. A prepared plan that becomes unreachable without being closed is freed
 * by the garbage collector (the backend registers a cleaner), but native memory is better released
 * explicitly.
 */
public abstract class PreparedPlan implements AutoCloseable {
    private final SparsePlan plan;
    private final AttentionBackend backend;
    private final Device device;
    private volatile boolean closed;

    /**
     * @param plan    the plan
     * @param backend the backend that prepared it
     * @param device  the device it runs on
     * @throws IllegalArgumentException if an argument is null
     */
    protected PreparedPlan(SparsePlan plan, AttentionBackend backend, Device device) {
        if (plan == null || backend == null || device == null) {
            throw new IllegalArgumentException("plan, backend and device: must not be null");
        }
        this.plan = plan;
        this.backend = backend;
        this.device = device;
    }

    /** The plan this was prepared from. */
    public final SparsePlan plan() {
        return plan;
    }

    /**
     * The backend that prepared it; that backend (or another instance of the same name, such as a
     * CPU backend on another pool) runs it.
     */
    public final AttentionBackend backend() {
        return backend;
    }

    /** The device it runs on. */
    public final Device device() {
        return device;
    }

    /** Bytes the backend holds for this plan beyond the plan itself (device memory, schedules). */
    public abstract long preparedBytes();

    /** False once closed. */
    public final boolean isOpen() {
        return !closed;
    }

    /**
     * Throws unless open.
     *
     * @throws IllegalStateException naming the plan once it is closed
     */
    public final void requireOpen() {
        if (closed) {
            throw new IllegalStateException("prepared plan: " + this + " is closed");
        }
    }

    /** Releases what the backend holds (idempotent). */
    @Override
    public final void close() {
        if (!closed) {
            closed = true;
            release();
        }
    }

    /** Frees the backend's resources; called once, by {@link #close()}. */
    protected abstract void release();

    @Override
    public String toString() {
        return "PreparedPlan[" + plan.description() + " on " + backend.name() + " " + device + ", " + preparedBytes() + " bytes]";
    }
}
