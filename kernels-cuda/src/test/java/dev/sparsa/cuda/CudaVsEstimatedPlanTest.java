package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.sparsa.patterns.verticalslash.VerticalSlash;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which contexts the device estimate of vertical-slash takes ({@link
 * CudaVsEstimatedPlan#refusal}), and the list construction of {@code sparsa_vs_emit} ({@code vsTile},
 * transcribed below line for line) against {@code VerticalSlash.layout} on the estimator's selections
 * and on random sets, in both semantics the device builds.
 */
class CudaVsEstimatedPlanTest {

    @Test
    void refusesWhatItDoesNotBuild() {
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 2, 300, 300, 64),
                Options.causalMask().withGeometry(new TileGeometry(64, 64)));
        assertNull(CudaVsEstimatedPlan.refusal(VerticalSlashEstimator.of(40, 60, VsSemantics.GRID_EXPANDED), ctx));
        assertNull(CudaVsEstimatedPlan.refusal(VerticalSlashEstimator.of(40, 60, VsSemantics.BLOCK_EXPANDED), ctx));
        assertNotNull(CudaVsEstimatedPlan.refusal(VerticalSlashEstimator.of(40, 60, VsSemantics.EXACT), ctx), "exact");
        assertNotNull(CudaVsEstimatedPlan.refusal(new VerticalSlashEstimator(40, 60, VsSemantics.GRID_EXPANDED, 65,
                Double.NaN), ctx), "65 scored rows");
        assertNull(CudaVsEstimatedPlan.refusal(VerticalSlashEstimator.of(40, 60, VsSemantics.GRID_EXPANDED),
                PlanContext.of(new AttentionShape(2, 4, 2, 70, 1030, 64, 64), Options.defaults())), "not causal, Nq < Nk");
        assertNotNull(CudaVsEstimatedPlan.refusal(VerticalSlashEstimator.of(40, 60, VsSemantics.GRID_EXPANDED),
                PlanContext.of(AttentionShape.of(1, 70000, 16, 16, 64), Options.causalMask())), "70000 slices");
    }

    @Test
    void theEmitKernelsListsAreTheHostLayouts() {
        for (int i = 0; i < 80; i++) {
            SplittableRandom r = new SplittableRandom(i);
            int g = i % 4 == 3 ? 128 : 64;
            boolean causal = r.nextBoolean();
            int nk = r.nextInt(1, 1300);
            int nq = causal ? (r.nextBoolean() ? nk : r.nextInt(1, nk + 1)) : r.nextInt(1, 1300);
            VsSemantics sem = i % 2 == 0 ? VsSemantics.BLOCK_EXPANDED : VsSemantics.GRID_EXPANDED;
            AttentionShape s = AttentionShape.of(1, 1, nq, nk, 16);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            int[] cols;
            int[] diags;
            if (i % 3 == 0) {
                // random sets, diagonals anywhere (negative ones too when not causal)
                cols = picks(r, r.nextInt(0, 60), nk, 0);
                diags = picks(r, r.nextInt(0, 80), nq + nk, -(nk - 1));
            } else {
                VerticalSlashEstimator est = new VerticalSlashEstimator(r.nextInt(1, 120), r.nextInt(1, 160), sem, 64, Double.NaN);
                Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
                VerticalSlashEstimator.Selection sel = est.select(ctx, rows(x.q()), rows(x.k()));
                cols = sel.columns();
                diags = sel.diagonals();
            }
            HeadLayout want = VerticalSlash.layout(ctx, cols, diags, sem);
            int rowsT = g;
            int tiles = (nq + rowsT - 1) / rowsT;
            List<Integer> fo = new ArrayList<>(List.of(0));
            List<Integer> po = new ArrayList<>(List.of(0));
            List<Integer> go = new ArrayList<>(List.of(0));
            Sink all = new Sink();
            for (int t = 0; t < tiles; t++) {
                vsTile(all, sem == VsSemantics.BLOCK_EXPANDED ? 0 : 1, cols, diags, t, rowsT, g, nq, nk, causal,
                        ctx.queryOffset());
                fo.add(all.full.size());
                po.add(all.part.size());
                go.add(all.gath.size());
            }
            String c = "case " + i + " " + sem + " nq " + nq + " nk " + nk + (causal ? " causal" : "") + " g" + g;
            assertArrayEquals(want.fullOffsets(), ints(fo), c + " full offsets");
            assertArrayEquals(want.fullBlocks(), ints(all.full), c + " full blocks");
            assertArrayEquals(want.partialOffsets(), ints(po), c + " partial offsets");
            assertArrayEquals(want.partialBlocks(), ints(all.part), c + " partial blocks");
            assertArrayEquals(want.gatherOffsets(), ints(go), c + " gather offsets");
            assertArrayEquals(want.gatherKeys(), ints(all.gath), c + " gathered keys");
        }
    }

    /** {@code VsSink} of the header. */
    private static final class Sink {
        final List<Integer> full = new ArrayList<>();
        final List<Integer> part = new ArrayList<>();
        final List<Integer> gath = new ArrayList<>();

        void block(int blk, long qLo, long qHi, int cols, int nk, boolean causal) {
            long k0 = (long) blk * cols;
            long kHi = Math.min(nk, k0 + cols) - 1;
            if (!causal || qLo - kHi >= 0) {
                full.add(blk);
            } else if (qHi - k0 >= 0) {
                part.add(blk);
            }
        }

        void gatherRun(long k0, long k1) {
            for (long k = k0; k < k1; k++) {
                gath.add((int) k);
            }
        }

        void blockRun(long b0, long b1, long qLo, long qHi, int cols, int nk, boolean causal) {
            for (long blk = b0; blk <= b1; blk++) {
                block((int) blk, qLo, qHi, cols, nk, causal);
            }
        }

        void range(long k0, long k1, long qLo, long qHi, int cols, int nk, boolean causal) {
            long k = k0;
            while (k < k1) {
                long blk = k / cols;
                long bStart = blk * cols;
                long bEnd = Math.min(nk, bStart + cols);
                if (k == bStart && bEnd <= k1) {
                    long last = k1 >= nk ? (nk - 1L) / cols : k1 / cols - 1;
                    blockRun(blk, last, qLo, qHi, cols, nk, causal);
                    k = Math.min(nk, (last + 1) * cols);
                } else {
                    long stop = Math.min(bEnd, k1);
                    gatherRun(k, stop);
                    k = stop;
                }
            }
        }
    }

    /** {@code vsTile} of the header, line for line. */
    private static void vsTile(Sink o, int mode, int[] cols, int[] diags, int t, int tileRows, int blockCols, int nq,
                               int nk, boolean causal, int queryOffset) {
        int nc = cols.length;
        int nd = diags.length;
        long start = (long) t * tileRows;
        long count = Math.min(tileRows, nq - start);
        long qLo = start + queryOffset;
        long qHi = qLo + count - 1;
        long lastKey = causal ? Math.min(nk - 1L, start + count - 1 + queryOffset) : nk - 1L;
        int ci = 0;
        if (mode == 0) {
            long end = qLo + tileRows;
            long limit = Math.min(nk, lastKey + 1);
            boolean have = false;
            long cs = 0;
            long ce = 0;
            for (int i = nd - 1; i >= 0; i--) {
                long dg = diags[i];
                if (dg >= end) {
                    continue;
                }
                long e = Math.max(end - dg, tileRows);
                if (!have || e > ce + tileRows) {
                    if (have) {
                        for (; ci < nc && cols[ci] < cs; ci++) {
                            if (cols[ci] < limit) {
                                o.gath.add(cols[ci]);
                            }
                        }
                        while (ci < nc && cols[ci] < ce) {
                            ci++;
                        }
                        o.range(Math.max(0, cs), Math.min(limit, ce), qLo, qHi, blockCols, nk, causal);
                    }
                    cs = e - tileRows;
                    ce = e;
                    have = true;
                } else if (e > ce) {
                    ce += tileRows;
                }
            }
            if (have) {
                for (; ci < nc && cols[ci] < cs; ci++) {
                    if (cols[ci] < limit) {
                        o.gath.add(cols[ci]);
                    }
                }
                o.range(Math.max(0, cs), Math.min(limit, ce), qLo, qHi, blockCols, nk, causal);
            } else {
                for (; ci < nc && cols[ci] < limit; ci++) {
                    o.gath.add(cols[ci]);
                }
            }
            return;
        }
        if (lastKey < 0) {
            return;
        }
        long a = -1;
        long b = -1;
        for (int i = nd - 1; i >= -1; i--) {
            long na = -1;
            long nb = -1;
            if (i >= 0) {
                long dg = diags[i];
                long k0 = Math.max(0, qLo - dg);
                long k1 = Math.min(lastKey, qHi - dg);
                if (k0 > k1) {
                    continue;
                }
                na = k0 / blockCols;
                nb = k1 / blockCols;
                if (a >= 0 && na <= b) {
                    b = Math.max(b, nb);
                    continue;
                }
            }
            if (a >= 0) {
                for (; ci < nc && cols[ci] <= lastKey && cols[ci] < a * blockCols; ci++) {
                    o.gath.add(cols[ci]);
                }
                while (ci < nc && cols[ci] / blockCols <= b) {
                    ci++;
                }
                o.blockRun(a, b, qLo, qHi, blockCols, nk, causal);
            }
            a = na;
            b = nb;
        }
        for (; ci < nc && cols[ci] <= lastKey; ci++) {
            o.gath.add(cols[ci]);
        }
    }

    private static int[] picks(SplittableRandom r, int count, int bound, int base) {
        TreeSet<Integer> s = new TreeSet<>();
        for (int i = 0; i < count; i++) {
            s.add(base + r.nextInt(bound));
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] ints(List<Integer> l) {
        return l.stream().mapToInt(Integer::intValue).toArray();
    }

    private static float[] rows(dev.sparsa.tensor.Tensor t) {
        float[] r = new float[t.seqLen() * t.dim()];
        for (int i = 0; i < t.seqLen(); i++) {
            t.readRow(0, 0, i, r, i * t.dim());
        }
        return r;
    }
}
