package dev.sparsa.patterns.window;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TokenSetEncoder;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.List;

/**
 * The causal sliding window that includes the diagonal, optionally with attention sinks (A-shape,
 * StreamingLLM) and dense last rows (tri-shape, SCBench's Tri-shape). Row {@code q} at position
 * {@code p} admits keys {@code k} with {@code 0 ≤ p − k ≤ window − 1} (the window holds {@code
 * window} keys, itself included), keys {@code k < sinks}, and, when {@code q ≥ queryLength −
 * denseLastRows}, every key; all under the context's causality (in a non-causal context the window
 * still looks back only; see {@link SymmetricWindow} for a two-sided one).
 *
 * <p>Compiles to the band predicate {@code [0, window−1]} with sinks, visiting only the blocks the
 * band and the sinks touch: O(N · (window + sinks) / blockCols) blocks. With dense last rows it goes
 * through {@link TokenSetEncoder}.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code window < 1}, {@code sinks < 0} or {@code denseLastRows < 0}
 */
public record SlidingWindow(int window, int sinks, int denseLastRows) implements Pattern {

    public SlidingWindow {
        Checks.atLeast("window", window, 1);
        Checks.atLeast("sinks", sinks, 0);
        Checks.atLeast("denseLastRows", denseLastRows, 0);
    }

    /** A window of {@code window} keys without sinks. */
    public static SlidingWindow of(int window) {
        return new SlidingWindow(window, 0, 0);
    }

    /** The same window with {@code s} sink keys (A-shape). */
    public SlidingWindow withSinks(int s) {
        return new SlidingWindow(window, s, denseLastRows);
    }

    /** Tri-shape: the A-shape plus the last {@code n} query rows dense. */
    public SlidingWindow withDenseLastRows(int n) {
        return new SlidingWindow(window, sinks, n);
    }

    @Override
    public String name() {
        String s = "window(" + window + ")";
        if (sinks > 0) {
            s += "+sinks(" + sinks + ")";
        }
        if (denseLastRows > 0) {
            s += "+denseLast(" + denseLastRows + ")";
        }
        return s;
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        return SparsePlan.uniform(ctx, layout(ctx), name());
    }

    /** The predicate of the window: the context's base, band {@code [0, window−1]}, sinks. */
    public ElementPredicate predicate(PlanContext ctx) {
        return ctx.basePredicate().withBand(0, window - 1).withSinks(sinks);
    }

    /** The layout of one head. */
    public HeadLayout layout(PlanContext ctx) {
        if (denseLastRows > 0) {
            HeadLayout direct = triShapeDirect(ctx);
            if (direct != null) {
                return direct;
            }
            return TokenSetEncoder.encode(ctx, (row, sink) -> {
                long p = (long) row + ctx.queryOffset();
                long last = Plans.lastVisibleKey(ctx, row);
                if (row >= ctx.queryLength() - denseLastRows) {
                    for (int k = 0; k <= last; k++) {
                        sink.accept(k, 0f);
                    }
                    return;
                }
                // ascending: sinks below the window, then the window
                long wLo = Math.max(0, p - window + 1);
                long wHi = Math.min(last, p);
                for (int k = 0; k < sinks && k <= last && k < wLo; k++) {
                    sink.accept(k, 0f);
                }
                for (long k = wLo; k <= wHi; k++) {
                    sink.accept((int) k, 0f);
                }
                for (long k = Math.max(wHi + 1, wLo); k < sinks && k <= last; k++) {
                    sink.accept((int) k, 0f); // sinks above the window (non-causal contexts)
                }
            }, List.of(predicate(ctx), ctx.basePredicate()));
        }
        return bandLayout(ctx, predicate(ctx), 0, window - 1, sinks);
    }

    /**
     * Tri-shape without the encoder: band tiles for the windowed rows, then tiles of the dense rows
     * (starting at the first dense row) whose blocks below the diagonal are full and whose diagonal
     * blocks are partial under the band predicate. That is exact only when the band admits every
     * causal pair of those diagonal blocks; otherwise (small windows) this returns null.
     */
    private HeadLayout triShapeDirect(PlanContext ctx) {
        if (!ctx.causal()) {
            return null;
        }
        ElementPredicate p = predicate(ctx);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int boundary = Math.max(0, nq - denseLastRows);
        for (int start = 0; start < nq; ) {
            int end = start < boundary ? Math.min(boundary, start + rows) : Math.min(nq, start + rows);
            int count = end - start;
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            long qLo = (long) start + ctx.queryOffset();
            long qHi = qLo + count - 1;
            long kHi = Math.min(nk - 1L, qHi);
            if (start >= boundary) {
                for (int blk = 0; nk > 0 && kHi >= 0 && blk <= kHi / cols; blk++) {
                    int k0 = blk * cols;
                    int k1 = Math.min(nk, k0 + cols) - 1;
                    if (qLo - k1 >= 0) {
                        t.full(blk);
                    } else if (qHi - k0 <= window - 1 || k1 < sinks) {
                        t.partial(blk); // the band admits every causal pair of this block
                    } else {
                        return null;
                    }
                }
            } else if (nk > 0) {
                long kLo = Math.max(0, qLo - (window - 1));
                if (kLo <= kHi) {
                    t.blocksByPredicate((int) (kLo / cols), (int) (kHi / cols));
                }
                if (sinks > 0) {
                    t.blocksByPredicate(0, (Math.min(sinks, nk) - 1) / cols);
                }
            }
            t.end();
            start = end;
        }
        return b.build();
    }

    /**
     * A layout visiting, per contiguous tile, the blocks that the δ-band {@code [lo, hi]} and the
     * first {@code sinks} keys touch, classified by {@code predicate}.
     */
    public static HeadLayout bandLayout(PlanContext ctx, ElementPredicate predicate, long lo, long hi, int sinks) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, predicate);
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nk = ctx.keyLength();
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            if (nk > 0) {
                long qLo = (long) start + ctx.queryOffset();
                long qHi = qLo + count - 1;
                long kLo = Math.max(0, qLo - hi);
                long kHi = Math.min(nk - 1L, qHi - lo);
                if (kLo <= kHi) {
                    t.blocksByPredicate((int) (kLo / cols), (int) (kHi / cols));
                }
                if (sinks > 0) {
                    t.blocksByPredicate(0, (Math.min(sinks, nk) - 1) / cols);
                }
            }
            t.end();
        }
        return b.build();
    }

    @Override
    public String toString() {
        return name();
    }
}
