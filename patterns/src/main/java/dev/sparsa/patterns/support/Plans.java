package dev.sparsa.patterns.support;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.Workers;
import dev.sparsa.tensor.Tensor;
import java.util.HashMap;
import java.util.Map;
import java.util.function.IntFunction;

/** Assembles plans from per-head or per-slice layouts, sharing layouts between equal heads. */
public final class Plans {
    private Plans() {
    }

    /** A layout per (batch, qHead) slice. */
    @FunctionalInterface
    public interface SliceLayouts {
        HeadLayout layout(int batch, int qHead);
    }

    /**
     * One layout per query head, identical across the batch. Heads whose {@code keyOf} values are
     * equal share one layout (built once).
     */
    public static SparsePlan perHead(PlanContext ctx, IntFunction<Object> keyOf, IntFunction<HeadLayout> build,
                                     String name) {
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(name);
        Map<Object, HeadLayout> cache = new HashMap<>();
        for (int h = 0; h < ctx.shape().qHeads(); h++) {
            final int head = h;
            Object key = keyOf.apply(h);
            HeadLayout l = key == null ? build.apply(h) : cache.computeIfAbsent(key, k -> build.apply(head));
            b.head(h, l);
        }
        return b.build();
    }

    /** One layout per (batch, query head) slice, e.g. for estimators that read that slice's Q and K. */
    public static SparsePlan perSlice(PlanContext ctx, SliceLayouts layouts, String name) {
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(name);
        for (int bi = 0; bi < ctx.shape().batch(); bi++) {
            for (int h = 0; h < ctx.shape().qHeads(); h++) {
                b.slice(bi, h, layouts.layout(bi, h));
            }
        }
        return b.build();
    }

    /**
     * {@link #perSlice}, with the slices' layouts computed on {@link Workers#current()} (the caller
     * and its helpers, caller-runs; only the caller when an input lives in a confined arena): for
     * estimators whose per-slice work reads only that slice's inputs and shares no mutable state. The
     * plan is the same as {@code perSlice}'s (slices are assembled in order).
     *
     * @throws java.util.concurrent.CancellationException if the planning thread is interrupted
     */
    public static SparsePlan perSliceParallel(PlanContext ctx, SliceLayouts layouts, String name, Tensor... inputs) {
        int heads = ctx.shape().qHeads();
        int slices = ctx.shape().batch() * heads;
        HeadLayout[] built = new HeadLayout[slices];
        Workers.current().forTensors(inputs).forEach(slices, i -> built[i] = layouts.layout(i / heads, i % heads));
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(name);
        for (int i = 0; i < slices; i++) {
            b.slice(i / heads, i % heads, built[i]);
        }
        return b.build();
    }

    /** The last key block a contiguous tile of rows {@code [start, start+count)} may see under causality, or the last block. */
    public static int lastVisibleBlock(PlanContext ctx, int start, int count) {
        int last = ctx.keyBlocks() - 1;
        if (ctx.causal()) {
            long lastKey = Math.min((long) ctx.keyLength() - 1, (long) start + count - 1 + ctx.queryOffset());
            last = lastKey < 0 ? -1 : (int) (lastKey / ctx.geometry().blockCols());
        }
        return last;
    }

    /** The last key row {@code row} may see under the context's causality ({@code keyLength-1} when not causal); may be negative. */
    public static long lastVisibleKey(PlanContext ctx, int row) {
        long last = ctx.keyLength() - 1L;
        return ctx.causal() ? Math.min(last, (long) row + ctx.queryOffset()) : last;
    }

    /**
     * The key block of {@code blockSize} keys holding row {@code row}'s position ({@code row + queryOffset}),
     * clamped to the {@code blocks} blocks of the keys.
     */
    public static int ownBlock(PlanContext ctx, int row, int blocks, int blockSize) {
        long p = (long) row + ctx.queryOffset();
        return (int) Math.min(blocks - 1, Math.max(0, p) / blockSize);
    }

    /**
     * Multiply-adds of every query row against one summary vector per block of {@code blockSize} keys:
     * {@code Nq · ceil(Nk / blockSize) · headDim} per slice, half of it when causal.
     */
    public static double rowBlockScoreMacs(PlanContext ctx, int blockSize) {
        double nb = Math.ceil(ctx.keyLength() / (double) blockSize);
        return (double) ctx.shape().slices() * ctx.queryLength() * nb * ctx.shape().headDim() * (ctx.causal() ? 0.5 : 1);
    }

    /**
     * Multiply-adds of the mean of every {@code blockSize} query rows against the mean of every {@code blockSize}
     * keys, {@code ceil(Nq / blockSize) · ceil(Nk / blockSize) · headDim} per slice (half of it when causal), plus
     * the pooling pass over every query and key, {@code (Nq + Nk) · headDim}.
     */
    public static double pooledBlockScoreMacs(PlanContext ctx, int blockSize) {
        double qb = Math.ceil(ctx.queryLength() / (double) blockSize);
        double kb = Math.ceil(ctx.keyLength() / (double) blockSize);
        // the pooled scores, plus the pooling pass over every query and key
        return (double) ctx.shape().slices() * (qb * kb * (ctx.causal() ? 0.5 : 1)
                + (double) ctx.queryLength() + ctx.keyLength()) * ctx.shape().headDim();
    }

    /** Validates that Q and K fit the context (estimators call this first). */
    public static void checkInputs(PlanContext ctx, Tensor q, Tensor k) {
        if (q == null || k == null) {
            throw new IllegalArgumentException("q, k: a data-dependent pattern needs both, got q=" + q + ", k=" + k);
        }
        var s = ctx.shape();
        if (q.batch() != s.batch() || q.heads() != s.qHeads() || q.seqLen() != s.queryLength() || q.dim() != s.headDim()) {
            throw new IllegalArgumentException("q: shape " + java.util.Arrays.toString(q.shape()) + " does not fit the context "
                    + s);
        }
        if (k.batch() != s.batch() || k.heads() != s.kvHeads() || k.seqLen() != s.keyLength() || k.dim() != s.headDim()) {
            throw new IllegalArgumentException("k: shape " + java.util.Arrays.toString(k.shape()) + " does not fit the context "
                    + s);
        }
    }
}
