package dev.sparsa.patterns.topk;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/** The direct shared-set layout admits exactly forced ∪ (visible selected keys), row by row, each pair once. */
class SharedKeySetLayoutTest {

    private static PlanContext ctx(int nq, int nk, boolean causal, int rows, int cols) {
        return PlanContext.of(new AttentionShape(1, 1, 1, nq, nk, 8, 8),
                Options.defaults().withCausal(causal).withGeometry(new TileGeometry(rows, cols)));
    }

    @Test
    void tokenSetEqualsDefinition() {
        List<PlanContext> ctxs = List.of(ctx(200, 200, true, 16, 16), ctx(150, 150, true, 8, 24), ctx(90, 230, true, 16, 8),
                ctx(120, 120, false, 32, 16), ctx(1, 300, true, 8, 8), ctx(77, 77, false, 24, 40), ctx(256, 256, true, 64, 64));
        SplittableRandom rnd = new SplittableRandom(5);
        int built = 0;
        int tried = 0;
        for (PlanContext ctx : ctxs) {
            for (int[] sw : new int[][] {{0, 40}, {3, 40}, {2, 3}, {0, 1}, {5, 100}, {17, 64}, {0, 500}}) {
                for (int rep = 0; rep < 4; rep++) {
                    ForcedKeys forced = new ForcedKeys(sw[0], sw[1]);
                    int[][] sel = randomSelection(ctx, forced, rnd);
                    HeadLayout l = SharedKeySetLayout.build(ctx, forced, sel);
                    tried++;
                    if (l == null) {
                        continue;
                    }
                    built++;
                    check(ctx, forced, sel, l);
                }
            }
        }
        assertTrue(built > tried / 2, "the direct road serves most cases: " + built + " of " + tried);
    }

    private static int[][] randomSelection(PlanContext ctx, ForcedKeys f, SplittableRandom rnd) {
        int rows = ctx.geometry().tileRows();
        int[][] sel = new int[ctx.queryTiles()][];
        for (int t = 0; t < sel.length; t++) {
            int r0 = t * rows;
            int r1 = Math.min(ctx.queryLength(), r0 + rows);
            long last = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) r1 - 1 + ctx.queryOffset()) : ctx.keyLength() - 1;
            long pLo = (long) r0 + ctx.queryOffset();
            long pHi = (long) r1 - 1 + ctx.queryOffset();
            List<Integer> keys = new ArrayList<>();
            double density = rnd.nextDouble();
            for (int k = 0; k <= last; k++) {
                boolean forcedForAll = k < f.sinks() || (pLo - k >= 0 && pHi - k < f.window());
                if (!forcedForAll && rnd.nextDouble() < density) {
                    keys.add(k);
                }
            }
            sel[t] = keys.stream().mapToInt(Integer::intValue).toArray();
        }
        return sel;
    }

    private static void check(PlanContext ctx, ForcedKeys f, int[][] sel, HeadLayout l) {
        List<List<Integer>> got = new ArrayList<>();
        for (int r = 0; r < ctx.queryLength(); r++) {
            got.add(new ArrayList<>());
        }
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int row = l.row(t, i);
                l.forEachAdmittedKey(t, row, (k, w) -> got.get(row).add(k));
            }
        }
        int rows = ctx.geometry().tileRows();
        for (int r = 0; r < ctx.queryLength(); r++) {
            long p = (long) r + ctx.queryOffset();
            long last = ctx.causal() ? Math.min(ctx.keyLength() - 1L, p) : ctx.keyLength() - 1;
            TreeSet<Integer> want = new TreeSet<>();
            for (int k = 0; k <= last; k++) {
                if (f.forced(p, k)) {
                    want.add(k);
                }
            }
            for (int k : sel[r / rows]) {
                if (k <= last) {
                    want.add(k);
                }
            }
            List<Integer> g = got.get(r);
            TreeSet<Integer> gs = new TreeSet<>(g);
            if (gs.size() != g.size()) {
                fail(ctx + " " + f + ": row " + r + " admits a key twice");
            }
            assertEquals(want, gs, ctx + " " + f + ": row " + r);
        }
    }
}
