package dev.sparsa.attention;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.backend.ForwardArguments;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * The drop-in entry point: the same call as a dense scaled-dot-product attention, plus a pattern.
 *
 * <pre>{@code
 * Tensor out = Attention.forward(q, k, v, Dense.INSTANCE, Options.causalMask());
 * AttentionResult r = Attention.forwardWithLse(q, k, v, pattern, options);
 * // plan and prepare once, run every layer
 * SparsePlan plan = Attention.plan(q, k, v, pattern, options);
 * try (PreparedPlan prepared = Attention.prepare(plan, q.device())) {
 *     Tensor out = Attention.forward(prepared, q, k, v, options.run());
 * }
 * }</pre>
 *
 * <p>Where a call runs: on the tensors' device when they live on an accelerator (the output is
 * allocated there too and the caller closes it); for host tensors, on {@link Options#device()} when
 * set, else on the available backend of highest priority that takes the shape and dtype
 * ({@link Backends#preferred(Device, AttentionShape, DType, TileGeometry)}), which copies host
 * inputs in and the output back. The geometry is the options' when set, else the chosen backend's
 * proposal for the shape and dtype.
 *
 * <p>Plans of static patterns are cached by (pattern, shape, options) together with their prepared
 * form, so a loop of drop-in calls plans and uploads once; data-dependent patterns plan on every
 * call (they look at this call's Q and K).
 *
 * <p>Throws {@link IllegalArgumentException} for inputs that do not fit (the message names the argument)
 * <p>Throws {@link dev.sparsa.backend.BackendUnavailableException} when no backend can run here
 */
public final class Attention {
    private static final PlanCache CACHE = new PlanCache();

    private Attention() {
    }

    /** Attention of Q over K/V restricted to {@code pattern}; the output lives where Q does. */
    public static Tensor forward(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        return call(q, k, v, pattern, options, false).output();
    }

    /** As {@link #forward(Tensor, Tensor, Tensor, Pattern, Options)}, with the LSE. */
    public static AttentionResult forwardWithLse(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        return call(q, k, v, pattern, options, true);
    }

    /**
     * Runs a plan made earlier on the preferred backend, preparing it for this call only (to run it
     * many times, {@link #prepare} it once and call {@link #forward(PreparedPlan, Tensor, Tensor,
     * Tensor, RunOptions)}).
     *
     * @throws IllegalArgumentException also when the options contradict the plan (causal flag, an
     *     explicit query offset or geometry), naming both values
     */
    public static Tensor forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        return forwardWithLse(plan, q, k, v, options, false).output();
    }

    /** As {@link #forward(SparsePlan, Tensor, Tensor, Tensor, Options)}, with the LSE. */
    public static AttentionResult forwardWithLse(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        return forwardWithLse(plan, q, k, v, options, true);
    }

    private static AttentionResult forwardWithLse(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options,
                                                  boolean withLse) {
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        Device device = deviceOf(q, k, v, options);
        return run(Backends.preferred(device, plan.shape(), q.dtype(), plan.geometry()), plan, q, k, v, options, withLse);
    }

    /** Runs a prepared plan on the backend that prepared it; the output lives where Q does. */
    public static Tensor forward(PreparedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options) {
        return run(backendOf(plan), plan, q, k, v, options, false).output();
    }

    /** As {@link #forward(PreparedPlan, Tensor, Tensor, Tensor, RunOptions)}, with the LSE. */
    public static AttentionResult forwardWithLse(PreparedPlan plan, Tensor q, Tensor k, Tensor v, RunOptions options) {
        return run(backendOf(plan), plan, q, k, v, options, true);
    }

    /**
     * Runs a plan on a chosen backend (prepared for this call only), with or without the LSE.
     *
     * @throws IllegalArgumentException also when the options contradict the plan
     */
    public static AttentionResult run(AttentionBackend backend, SparsePlan plan, Tensor q, Tensor k, Tensor v,
                                      Options options, boolean withLse) {
        if (backend == null) {
            throw new IllegalArgumentException("backend: must not be null");
        }
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        plan.context().requireConsistent(options);
        Device device = deviceOf(q, k, v, options);
        try (PreparedPlan prepared = backend.prepare(plan, device != null ? device : backend.defaultDevice())) {
            return run(backend, prepared, q, k, v, options.run(), withLse);
        }
    }

    /**
     * Plans {@code pattern} for these inputs under {@code options}, in the options' geometry or the
     * one the backend that would run the call proposes. Static patterns come from the cache.
     */
    public static SparsePlan plan(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        if (pattern == null || options == null) {
            throw new IllegalArgumentException("pattern and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        AttentionBackend backend = Backends.preferred(deviceOf(q, k, v, options), s, q.dtype(), options.geometry());
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, q.dtype()));
        return planIn(context, pattern, q, k);
    }

    /**
     * The plan in the preferred backend's form on its default device, for any number of runs; the
     * caller closes it.
     */
    public static PreparedPlan prepare(SparsePlan plan) {
        return prepare(plan, null);
    }

    /**
     * The plan in the form of the preferred backend running on {@code device} ({@code null}: the
     * preferred backend's default device); the caller closes it.
     */
    public static PreparedPlan prepare(SparsePlan plan, Device device) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        AttentionBackend backend = Backends.preferred(device, plan.shape(), DType.F32, plan.geometry());
        return backend.prepare(plan, device != null ? device : backend.defaultDevice());
    }

    /**
     * One attention spread over several devices of this host: heads sharded (whole KV groups per
     * device), or the key range split with the partial outputs merged exactly through their LSEs
     * (see {@link Sharding}). The plan is made once, for the whole call, and split per device; the
     * output lives where the inputs do. Equal to the one-device result up to f32 reassociation.
     *
     * @throws IllegalArgumentException as {@link #forward(Tensor, Tensor, Tensor, Pattern, Options)},
     *     and when a device of the sharding has no backend that runs the call
     */
    public static AttentionResult forwardSharded(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options,
                                                 Sharding sharding) {
        if (pattern == null || options == null || sharding == null) {
            throw new IllegalArgumentException("pattern, options and sharding: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device first = sharding.devices().get(0);
        AttentionBackend backend = Backends.preferred(first, s, q.dtype(), options.geometry());
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, q.dtype()));
        SparsePlan plan = planIn(context, pattern, q, k);
        return ShardedRun.run(plan, q, k, v, options.run(), sharding, true);
    }

    // ------------------------------------------------------------------ internals

    private static AttentionResult call(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options, boolean withLse) {
        if (pattern == null || options == null) {
            throw new IllegalArgumentException("pattern and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device device = deviceOf(q, k, v, options);
        AttentionBackend backend = Backends.preferred(device, s, q.dtype(), options.geometry());
        Device target = device != null ? device : backend.defaultDevice();
        PlanContext context = PlanContext.of(s, options, backend.proposedGeometry(s, q.dtype()));
        if (!pattern.dataDependent()) {
            return run(backend, CACHE.prepared(pattern, context, backend, target), q, k, v, options.run(), withLse);
        }
        SparsePlan plan = planIn(context, pattern, q, k);
        try (PreparedPlan prepared = backend.prepare(plan, target)) {
            return run(backend, prepared, q, k, v, options.run(), withLse);
        }
    }

    private static SparsePlan planIn(PlanContext context, Pattern pattern, Tensor q, Tensor k) {
        if (!pattern.dataDependent()) {
            return CACHE.plan(pattern, context);
        }
        // estimators read Q and K in Java: device inputs are copied to the host for them
        return pattern.plan(context, q.toHost(), k.toHost());
    }

    /** Runs a prepared plan; allocates the output (and LSE) on the inputs' device. */
    private static AttentionResult run(AttentionBackend backend, PreparedPlan plan, Tensor q, Tensor k, Tensor v,
                                       RunOptions options, boolean withLse) {
        if (options == null) {
            throw new IllegalArgumentException("options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Device where = ForwardArguments.device(q, k, v, null, null);
        Tensor out = backend.allocate(where, options.outputTypeFor(q.dtype()), Layout.BHSD, s.batch(), s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = null;
        try {
            lse = withLse ? backend.allocate(where, DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1) : null;
            backend.forward(plan, q, k, v, out, lse, options);
            return new AttentionResult(out, lse);
        } catch (RuntimeException | Error e) {
            out.close();
            if (lse != null) {
                lse.close();
            }
            throw e;
        }
    }

    /**
     * The device a call runs on: the inputs' when they live on an accelerator, else the options'
     * (null: the preferred backend's).
     */
    private static Device deviceOf(Tensor q, Tensor k, Tensor v, Options options) {
        if (q == null || k == null || v == null) {
            throw new IllegalArgumentException("q, k, v: must not be null (got q=" + q + ", k=" + k + ", v=" + v + ")");
        }
        Device inputs = ForwardArguments.device(q, k, v, null, null);
        if (!inputs.isHost()) {
            if (options.device() != null && !options.device().equals(inputs)) {
                throw new IllegalArgumentException("options: device " + options.device() + " but the tensors are on " + inputs);
            }
            return inputs;
        }
        return options.device();
    }

    private static AttentionBackend backendOf(PreparedPlan plan) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        return plan.backend();
    }
}
