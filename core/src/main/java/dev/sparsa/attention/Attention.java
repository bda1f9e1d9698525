package dev.sparsa.attention;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;

/**
 * The drop-in entry point: the same call as a dense scaled-dot-product attention, plus a pattern.
 *
 * <pre>{@code
 * Tensor out = Attention.forward(q, k, v, Dense.INSTANCE, Options.causalMask());
 * AttentionResult r = Attention.forwardWithLse(q, k, v, pattern, options);
 * }</pre>
 *
 * Runs on the available backend of highest priority that covers the call ({@link
 * Backends#preferred(AttentionShape, DType, dev.sparsa.plan.TileGeometry)}) unless a backend is passed. Returns heap-backed tensors
 * (BHSD). To plan once and run many layers, call {@link Pattern#plan} and {@link #forward(SparsePlan,
 * Tensor, Tensor, Tensor, Options)}.
 *
 * @throws IllegalArgumentException for inputs that do not fit (the message names the argument)
 * @throws dev.sparsa.backend.BackendUnavailableException when no backend can run here
 */
public final class Attention {
    private Attention() {
    }

    /** Attention of Q over K/V restricted to {@code pattern}. */
    public static Tensor forward(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        SparsePlan plan = plan(q, k, v, pattern, options);
        return run(backendFor(plan, q), plan, q, k, v, options, false).output();
    }

    /** As {@link #forward(Tensor, Tensor, Tensor, Pattern, Options)}, with the LSE. */
    public static AttentionResult forwardWithLse(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        SparsePlan plan = plan(q, k, v, pattern, options);
        return run(backendFor(plan, q), plan, q, k, v, options, true);
    }

    /** Runs a prepared plan. */
    public static Tensor forward(SparsePlan plan, Tensor q, Tensor k, Tensor v, Options options) {
        if (plan == null || q == null) {
            throw new IllegalArgumentException("plan and q: must not be null");
        }
        return run(backendFor(plan, q), plan, q, k, v, options, false).output();
    }

    /** The preferred backend that runs this plan's shape and geometry in q's dtype. */
    private static AttentionBackend backendFor(SparsePlan plan, Tensor q) {
        return Backends.preferred(plan.shape(), q.dtype(), plan.geometry());
    }

    /** Runs a prepared plan on a chosen backend, with or without the LSE. */
    public static AttentionResult run(AttentionBackend backend, SparsePlan plan, Tensor q, Tensor k, Tensor v,
                                      Options options, boolean withLse) {
        if (backend == null) {
            throw new IllegalArgumentException("backend: must not be null");
        }
        if (plan == null || options == null) {
            throw new IllegalArgumentException("plan and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        Tensor out = Tensor.allocate(options.outputTypeFor(q.dtype()), Layout.BHSD, s.batch(), s.qHeads(),
                s.queryLength(), s.valueDim());
        Tensor lse = withLse ? Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1) : null;
        backend.forward(plan, q, k, v, out, lse, options);
        return new AttentionResult(out, lse);
    }

    /** Plans {@code pattern} for these inputs under {@code options}. */
    public static SparsePlan plan(Tensor q, Tensor k, Tensor v, Pattern pattern, Options options) {
        if (pattern == null || options == null) {
            throw new IllegalArgumentException("pattern and options: must not be null");
        }
        AttentionShape s = AttentionShape.of(q, k, v);
        return pattern.plan(PlanContext.of(s, options), q, k);
    }
}
