package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.patterns.window.PerHeadWindows;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import org.junit.jupiter.api.Test;

/** Sliding windows, sinks, tri-shape, symmetric, neighbourhood and per-head windows against their definitions. */
class WindowFamilyTest {

    @Test
    void slidingWindowSinksAndTriShapeMatchTheirDefinition() {
        int[][] params = {{1, 0, 0}, {7, 0, 0}, {20, 3, 0}, {40, 16, 0}, {13, 5, 9}, {200, 0, 0}, {5, 100, 0}, {9, 2, 1},
                {60, 3, 20}, {200, 0, 30}, {45, 50, 17}}; // the last three take the direct tri-shape road
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] p : params) {
                int w = p[0], s = p[1], dense = p[2];
                SparsePlan plan = Patterns.slidingWindow(w).withSinks(s).withDenseLastRows(dense).plan(ctx);
                assertTokenSet(plan, (b, h, r, k) -> {
                    long pos = (long) r + ctx.queryOffset();
                    boolean inWindow = pos - k >= 0 && pos - k <= w - 1;
                    boolean denseRow = r >= ctx.queryLength() - dense;
                    return causalOk(ctx, r, k) && (inWindow || k < s || denseRow);
                }, "window " + w + " sinks " + s + " dense " + dense);
            }
        }
    }

    @Test
    void aShapeDensityHasItsClosedForm() {
        int n = 1000;
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, n, n, 16), Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        for (int[] p : new int[][] {{128, 16}, {64, 0}, {1, 1}, {500, 100}}) {
            int w = p[0], s = p[1];
            // row q sees min(q+1, w) window keys and, below the window, min(s, q+1-w) sinks
            long admitted = 0;
            for (long q = 0; q < n; q++) {
                admitted += Math.min(q + 1, w) + Math.max(0, Math.min(s, q + 1 - w));
            }
            double want = admitted / (n * (n + 1) / 2.0);
            assertEquals(want, Patterns.aShape(w, s).plan(ctx).density(), 1e-12, "A-shape " + w + "+" + s);
        }
    }

    @Test
    void symmetricWindowAndNeighbourhoodMatchTheirDefinitions() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (int radius : new int[] {0, 3, 17, 500}) {
                assertTokenSet(Patterns.symmetricWindow(radius).plan(ctx), (b, h, r, k) -> {
                    long pos = (long) r + ctx.queryOffset();
                    return causalOk(ctx, r, k) && Math.abs(pos - k) <= radius;
                }, "symmetric " + radius);
            }
            for (int size : new int[] {1, 6, 25, 1000}) {
                int nk = ctx.keyLength();
                assertTokenSet(Patterns.neighbourhood(size).plan(ctx), (b, h, r, k) -> {
                    long pos = (long) r + ctx.queryOffset();
                    if (pos >= 0 && pos < nk) {
                        return nattenNeighbor(ctx.causal(), (int) pos, k, size, nk);
                    }
                    if (ctx.causal()) {
                        return k <= pos && pos - k < size; // the size keys ending at the query
                    }
                    long start = Math.max(0, Math.min(pos - size / 2, (long) nk - size));
                    return k >= start && k < start + size;
                }, "neighbourhood " + size);
            }
        }
    }

    /**
     * NATTEN's reference mask in one dimension with stride and dilation 1, ported from {@code
     * get_window_left}, {@code get_window_right}, {@code get_win_start}, {@code get_win_end} and
     * {@code is_neighbor} in {@code csrc/include/natten/cuda/reference/mask.hpp} of
     * github.com/SHI-Labs/NATTEN at commit 8c8729f496a47804e04f4b57b818edd6797d0926.
     */
    static boolean nattenNeighbor(boolean causal, int index, int kv, int windowSize, int length) {
        int windowLeft = windowSize / 2;
        int windowRight = (windowSize / 2) + ((windowSize % 2) - 1);
        int stride = 1;
        int start;
        int end;
        if (causal) {
            int leader = Math.min((index / stride) * stride + stride - 1, length - 1);
            start = Math.max(leader - windowLeft - windowRight, 0);
            end = Math.min(index + 1, length);
        } else {
            int leader = Math.min(((index / stride) * stride) + (stride / 2), length - 1);
            start = Math.max(leader - windowLeft, 0) + ((leader + windowRight >= length) ? (length - windowRight - leader - 1) : 0);
            end = start + windowSize;
        }
        return kv >= start && kv < end;
    }

    @Test
    void perHeadAndElasticWindowsUseEachHeadsWindow() {
        PlanContext ctx = Definitions.ctx(1, 4, 2, 90, 90, 16, true, 16, 16);
        int[] ws = {3, 30, 3, 1};
        assertTokenSet(Patterns.perHeadWindows(ws, 2).plan(ctx), (b, h, r, k) -> causalOk(ctx, r, k)
                && (k < 2 || r - k <= ws[h] - 1), "per-head windows");
        assertEquals(3, Patterns.perHeadWindows(ws, 2).plan(ctx).layouts().size(), "heads 0 and 2 share a layout");
        double[] alpha = {4, 10, 0.4, 2};
        double[] beta = {0, 0.1, 0.2, 0.05};
        PerHeadWindows moa = PerHeadWindows.elastic(alpha, beta, 0);
        assertTokenSet(moa.plan(ctx), (b, h, r, k) -> {
            long w = Math.max(1, Math.round(alpha[h] + beta[h] * 90));
            return causalOk(ctx, r, k) && r - k < w;
        }, "MoA elastic");
    }
}
