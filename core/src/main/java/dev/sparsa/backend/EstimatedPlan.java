package dev.sparsa.backend;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;

/**
 * A data-dependent pattern prepared so that a backend estimates its selection on the device at each
 * call, from that call's Q and K, and runs attention over it, with nothing copied to the host: the
 * selection never exists as a host {@link dev.sparsa.plan.SparsePlan}. It selects exactly the pairs
 * {@code pattern.plan(context, q, k)} would (the backend's documented contract for each pattern it
 * accepts), so its outputs equal those of the host-planned road within the kernel's tolerance.
 *
 * <p>Made by {@link AttentionBackend#prepareEstimated}, for one pattern, one context (shape,
 * causality, offset, geometry) and one device; {@link #forward} runs it on device tensors of that
 * shape as often as needed. Its device memory is reused by every call, so calls are serialised on
 * this object. Closing it frees that memory (waiting for the work still using it); {@code forward}
 * on a closed plan throws {@link IllegalStateException}.
 */
public abstract class EstimatedPlan implements AutoCloseable {
    private final Pattern pattern;
    private final PlanContext context;
    private final AttentionBackend backend;
    private final Device device;
    private volatile boolean closed;

    /**
     * @param pattern the data-dependent pattern whose selection is estimated
     * @param context the context it was prepared for
     * @param backend the backend that runs it
     * @param device  the device it runs on (not the host)
     * @throws IllegalArgumentException if an argument is null or the device is the host
     */
    protected EstimatedPlan(Pattern pattern, PlanContext context, AttentionBackend backend, Device device) {
        if (pattern == null || context == null || backend == null || device == null) {
            throw new IllegalArgumentException("pattern, context, backend and device: must not be null");
        }
        if (device.isHost()) {
            throw new IllegalArgumentException("device: an estimated plan runs on a device, got the host");
        }
        this.pattern = pattern;
        this.context = context;
        this.backend = backend;
        this.device = device;
    }

    /** The pattern whose selection each call estimates. */
    public final Pattern pattern() {
        return pattern;
    }

    /** The context it was prepared for. */
    public final PlanContext context() {
        return context;
    }

    /** The backend that runs it. */
    public final AttentionBackend backend() {
        return backend;
    }

    /** The device it runs on. */
    public final Device device() {
        return device;
    }

    /**
     * Estimates the selection from {@code q} and {@code k} and computes attention over it into
     * {@code out} (and {@code lse} when not null). The tensors live on {@link #device()} and have the
     * context's shape, as {@link AttentionBackend#forward(PreparedPlan, Tensor, Tensor, Tensor, Tensor,
     * Tensor, RunOptions)} requires of them.
     *
     * @throws IllegalArgumentException for tensors of another shape, dtype or device
     * @throws IllegalStateException if closed
     */
    public final synchronized void forward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
        if (closed) {
            throw new IllegalStateException("estimated plan: " + this + " is closed");
        }
        run(q, k, v, out, lse, options);
    }

    /** {@link #forward}'s work, called open and serialised. */
    protected abstract void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options);

    /**
     * An upper bound, known before any call, of the fraction of the context's pairs that a call's
     * plan visits (of all pairs, or of the causal ones under causality), from the pattern's budgets
     * and the plan's capacities; 1 when nothing better is known. The drop-in call's {@code AUTO}
     * dispatch takes the device estimate only when this is below {@code
     * Dispatcher.SUBSTITUTE_BELOW}.
     */
    public double visitedFractionBound() {
        return 1.0;
    }

    /** False once closed. */
    public final boolean isOpen() {
        return !closed;
    }

    /** Frees the device memory (idempotent). */
    @Override
    public final synchronized void close() {
        if (!closed) {
            closed = true;
            release();
        }
    }

    /** Frees the backend's resources; called once, by {@link #close()}. */
    protected abstract void release();

    @Override
    public String toString() {
        return "EstimatedPlan[" + pattern.name() + " on " + backend.name() + " " + device + "]";
    }
}
