package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.compose.CompensationToken;
import dev.sparsa.patterns.compose.PerLayer;
import dev.sparsa.patterns.compose.Union;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** Unions, per-head and per-layer assignment, global tokens, MInference configs and the compensation token. */
class CompositionTest {

    @Test
    void unionOfStaticPatternsIsTheOrOfTheirDefinitions() {
        for (PlanContext ctx : Definitions.sweep()) {
            int[] cols = {0, 3, 50};
            int[] diags = {0, 7};
            Pattern u = Patterns.union(Patterns.aShape(9, 2), Patterns.verticalSlash(cols, diags, VsSemantics.EXACT),
                    Patterns.dilatedWindow(4, 5));
            assertTokenSet(u.plan(ctx), (b, h, r, k) -> {
                long d = (long) r + ctx.queryOffset() - k;
                return causalOk(ctx, r, k) && ((d >= 0 && d < 9) || k < 2 || Oracles.contains(cols, k) || d == 0 || d == 7
                        || (d >= 0 && d % 5 == 0 && d / 5 < 4));
            }, "union of mixed predicates");
            // a window with sinks and exact columns: merged tile by tile (columns next to the band's
            // edge blocks list those blocks key by key)
            int[] many = {1, 4, 5, 12, 13, 14, 20, 33, 40, 41, 63, 64, 70, 95};
            Pattern ac = Patterns.union(Patterns.aShape(11, 3), Patterns.verticalSlash(many, new int[0], VsSemantics.EXACT));
            assertTokenSet(ac.plan(ctx), (b, h, r, k) -> {
                long d = (long) r + ctx.queryOffset() - k;
                return causalOk(ctx, r, k) && ((d >= 0 && d < 11) || k < 3 || Oracles.contains(many, k));
            }, "A-shape with columns");
            // same predicate, plain tiling: the block-merging path
            Pattern same = Patterns.union(Patterns.randomBlockSparse(0.2, 1), Patterns.randomBlockSparse(0.2, 2));
            var p1 = new dev.sparsa.patterns.blocksparse.RandomBlockSparse(0.2, 1);
            var p2 = new dev.sparsa.patterns.blocksparse.RandomBlockSparse(0.2, 2);
            int rows = ctx.geometry().tileRows();
            int bc = ctx.geometry().blockCols();
            assertTokenSet(same.plan(ctx), (b, h, r, k) -> causalOk(ctx, r, k)
                    && (p1.keeps(tile(ctx, r), k / bc) || p2.keeps(tile(ctx, r), k / bc)), "union of block layouts");
        }
    }

    @Test
    void unionOfRandomLayoutsKeepsEveryPairAndWeightOnce() {
        SplittableRandom rnd = new SplittableRandom(77);
        for (PlanContext ctx : Definitions.sweep()) {
            for (int trial = 0; trial < 4; trial++) {
                HeadLayout a = RandomPlans.randomLayout(rnd, ctx, trial % 2 == 0);
                HeadLayout b = RandomPlans.randomLayout(rnd, ctx, false);
                HeadLayout u = Union.merge(ctx, List.of(a, b));
                SparsePlan pa = SparsePlan.uniform(ctx, a, "a");
                SparsePlan pb = SparsePlan.uniform(ctx, b, "b");
                SparsePlan pu = SparsePlan.uniform(ctx, u, "u");
                List<TreeMap<Integer, Float>> ta = TokenSets.of(pa, 0, 0);
                List<TreeMap<Integer, Float>> tb = TokenSets.of(pb, 0, 0);
                List<TreeMap<Integer, Float>> tu = TokenSets.of(pu, 0, 0);
                for (int r = 0; r < ctx.queryLength(); r++) {
                    TreeMap<Integer, Float> want = new TreeMap<>(tb.get(r));
                    want.putAll(ta.get(r)); // the first component's weight wins
                    assertEquals(want, tu.get(r), "row " + r + " trial " + trial + " in " + ctx);
                }
            }
        }
    }

    @Test
    void perHeadAssignsEachHeadItsPattern() {
        PlanContext ctx = Definitions.ctx(1, 3, 3, 60, 60, 16, true, 16, 16);
        Problems.Qkv qkv = Problems.qkv(4, ctx.shape(), DType.F32, Layout.BHSD);
        Pattern vs = VerticalSlashEstimator.of(30, 50, VsSemantics.BLOCK_EXPANDED);
        Pattern ph = Patterns.perHead(List.of(Patterns.slidingWindow(5), vs, Patterns.slidingWindow(5)));
        SparsePlan plan = ph.plan(ctx, qkv.q(), qkv.k());
        SparsePlan vsPlan = vs.plan(ctx, qkv.q(), qkv.k());
        assertTokenSet(plan, (b, h, r, k) -> h == 1 ? Oracles.contains(TokenSets.keys(vsPlan, b, 1)[r], k)
                : causalOk(ctx, r, k) && r - k < 5, "per head");
        assertThrows(IllegalArgumentException.class, () -> Patterns.perHead(List.of(Patterns.slidingWindow(5))).plan(ctx),
                "a table of 1 head for 3 heads");
        assertThrows(UnsupportedOperationException.class, () -> ph.plan(ctx));
    }

    /** The absolute tile of row {@code r}'s plan tile (random block layouts are keyed by it). */
    private static int tile(PlanContext ctx, int r) {
        int rows = ctx.geometry().tileRows();
        return Math.floorDiv(r / rows * rows + ctx.queryOffset(), rows);
    }

    @Test
    void globalTokensWithAWindow() {
        for (PlanContext ctx : Definitions.sweep()) {
            int[] g = {0, 10, 31};
            Pattern p = Patterns.union(Patterns.slidingWindow(4), Patterns.globalTokens(g, g));
            assertTokenSet(p.plan(ctx), (b, h, r, k) -> {
                long d = (long) r + ctx.queryOffset() - k;
                return causalOk(ctx, r, k) && ((d >= 0 && d < 4) || Oracles.contains(g, (int) (r + ctx.queryOffset()))
                        || Oracles.contains(g, k));
            }, "longformer");
        }
    }

    @Test
    void minferenceConfigParsesLayersAndHeads() {
        String json = """
                [ {"0": ["vertical_and_slash", 1000, 6096, 0.9], "1": ["stream_llm", 100, 800, 0.5]},
                  {"1": ["block_sparse", 10, 10, 0.1], "0": ["vertical_and_slash", 30, 50, 1]} ]
                """;
        PerLayer layers = Patterns.minferenceConfig(json, VsSemantics.BLOCK_EXPANDED);
        assertEquals(2, layers.layerCount());
        PlanContext ctx = Definitions.ctx(1, 2, 2, 40, 40, 16, true, 8, 8);
        Problems.Qkv qkv = Problems.qkv(8, ctx.shape(), DType.F32, Layout.BHSD);
        SparsePlan plan = layers.forLayer(0).plan(ctx, qkv.q(), qkv.k());
        SparsePlan stream = SlidingWindow.of(800).withSinks(100).plan(ctx);
        for (int r = 0; r < 40; r++) {
            assertEquals(java.util.Arrays.toString(TokenSets.keys(stream, 0, 1)[r]),
                    java.util.Arrays.toString(TokenSets.keys(plan, 0, 1)[r]));
        }
        layers.forLayer(1).plan(ctx, qkv.q(), qkv.k());
        assertThrows(IllegalArgumentException.class, () -> layers.forLayer(2));
        for (String bad : List.of("{}", "[]", "[{\"0\": [\"nope\", 1, 1, 0]}]", "[{\"0\": [\"stream_llm\", 0, 1, 0]}]",
                "[{\"1\": [\"stream_llm\", 1, 1, 0]}]", "[{\"0\": [\"stream_llm\", 1]}]", "[{\"0\": [\"stream_llm\", 1, 1, 0]", "[{\"x\": 1}]")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Patterns.minferenceConfig(bad, VsSemantics.EXACT), bad);
            assertTrue(e.getMessage().contains("config") || e.getMessage().contains("json"), e.getMessage());
        }
    }

    @Test
    void compensationTokenSummarisesTheDroppedKeys() {
        int nk = 50;
        int sinks = 3;
        int window = 10;
        PlanContext orig = Definitions.ctx(1, 2, 1, 20, nk, 8, true, 8, 8);
        Problems.Qkv qkv = Problems.qkv(9, orig.shape(), DType.F32, Layout.BHSD);
        Tensor k2 = CompensationToken.append(qkv.k(), sinks, window);
        Tensor v2 = CompensationToken.append(qkv.v(), sinks, window);
        assertEquals(nk + 1, k2.seqLen());
        for (int d = 0; d < 8; d++) {
            double mean = 0;
            for (int j = sinks; j < nk - window; j++) {
                mean += qkv.v().get(0, 0, j, d);
            }
            assertEquals(mean / (nk - window - sinks), v2.get(0, 0, nk, d), 1e-5);
            assertEquals(qkv.k().get(0, 0, 7, d), k2.get(0, 0, 7, d));
        }
        PlanContext ext = new PlanContext(new dev.sparsa.spec.AttentionShape(1, 2, 1, 20, nk + 1, 8, 8), orig.geometry(), true,
                CompensationToken.queryOffset(20, nk));
        SparsePlan plan = CompensationToken.pattern(Patterns.aShape(window, sinks), sinks, window).plan(ext);
        float w = (float) Math.log(nk - window - sinks);
        List<TreeMap<Integer, Float>> rows = TokenSets.of(plan, 0, 0);
        for (int r = 0; r < 20; r++) {
            TreeMap<Integer, Float> want = new TreeMap<>();
            long p = r + 30;
            for (int k = 0; k < nk; k++) {
                if (k <= p && (k < sinks || p - k < window)) {
                    want.put(k, 0f);
                }
            }
            want.put(nk, w);
            assertEquals(want, rows.get(r), "row " + r);
        }
    }
}
