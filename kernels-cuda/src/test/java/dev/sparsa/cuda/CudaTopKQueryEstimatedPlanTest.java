package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQuery;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which contexts the device estimate of {@link TopKPerQuery} takes ({@link
 * CudaTopKQueryEstimatedPlan#refusal}); the per-row lists of {@link CudaTopKQueryEstimatedPlan#hostLayout}
 * admit, row by row, exactly the keys {@code TopKPerQuery.plan} admits (its token-set encoding) and
 * fit the skeleton's room; {@code sparsa_tq_emit} (transcribed below line for line) writes
 * hostLayout's arrays; and the work list runs every (slice, row) once, longest rows first. Causal and
 * not, query offsets, Nq ≠ Nk, sinks and windows, k above the visible keys, k 0, data full of ties.
 */
class CudaTopKQueryEstimatedPlanTest {

    @Test
    void refusesWhatItCannotHold() {
        AttentionShape s = AttentionShape.of(1, 2, 1000, 1000, 64);
        PlanContext causal = PlanContext.of(s, Options.causalMask());
        assertNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(64, new ForcedKeys(4, 16)), causal));
        assertNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(5000, ForcedKeys.NONE),
                PlanContext.of(s, Options.defaults())), "k above the keys");
        assertNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(0, new ForcedKeys(4, 0)), causal), "k 0");
        assertNotNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(8, ForcedKeys.NONE),
                PlanContext.of(AttentionShape.of(1, 1, 64, CudaTopKEstimatedPlan.MAX_KEYS + 1, 64), Options.defaults())));
        assertNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(8, ForcedKeys.NONE),
                PlanContext.of(AttentionShape.of(1, 1, 64, CudaTopKEstimatedPlan.MAX_KEYS, 64), Options.defaults())));
        assertTrue(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(8, ForcedKeys.NONE),
                PlanContext.of(AttentionShape.of(300, 256, 64, 64, 64), Options.defaults())).contains("76800 slices"));
        // 32 heads of 32768 rows keeping 2048 + 64 + 1024 keys: 3.3e9 ints
        String big = CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(2048, new ForcedKeys(64, 1024)),
                PlanContext.of(AttentionShape.of(1, 32, 32768, 32768, 128), Options.causalMask()));
        assertTrue(big != null && big.contains("exceed"), big);
        assertNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(2048, new ForcedKeys(64, 1024)),
                PlanContext.of(AttentionShape.of(1, 8, 32768, 32768, 128), Options.causalMask())));
        assertNotNull(CudaTopKQueryEstimatedPlan.refusal(new TopKPerQuery(8, ForcedKeys.NONE),
                PlanContext.of(AttentionShape.of(1, 1, 0, 10, 64), Options.defaults())));
        assertNotNull(CudaTopKQueryEstimatedPlan.refusal(null, causal));
        // the pool's header as the skeleton writes it: one tile per row, row r starting at r
        int[] head = EstimatedSkeleton.header(causal, 2, 1000, 1);
        assertEquals(CudaTopKQueryEstimatedPlan.headerInts(2, 1000), head.length);
        for (int r = 0; r < 1000; r++) {
            assertEquals(r, head[head[LI_ROW_START] + r]);
            assertEquals(1, head[head[LI_ROW_COUNT] + r]);
        }
    }

    @Test
    void perRowListsAdmitTheHostPlansPairsAndTheEmitKernelWritesThem() {
        int ran = 0;
        long forcedAndSelected = 0;
        for (int i = 0; i < 60; i++) {
            SplittableRandom r = new SplittableRandom(2000 + i);
            int g = i % 2 == 0 ? 64 : 128;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 700);
            int nq = switch (r.nextInt(3)) {
                case 0 -> nk;
                case 1 -> r.nextInt(1, nk + 1);
                default -> r.nextInt(1, 700);
            };
            AttentionShape s = AttentionShape.of(1, 2, nq, nk, 16);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            int k = r.nextInt(5) == 0 ? nk + r.nextInt(1, 50) : r.nextInt(0, Math.max(1, nk / 3));
            int sinks = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 40);
            int window = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 200);
            if (k == 0 && sinks == 0 && window == 0) {
                k = 1;
            }
            TopKPerQuery p = new TopKPerQuery(k, new ForcedKeys(sinks, window));
            assertNull(CudaTopKQueryEstimatedPlan.refusal(p, ctx));
            Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
            if (i % 3 == 1) {
                coarse(x.k(), r); // exact ties among scores
            }
            SparsePlan plan = p.plan(ctx, x.q(), x.k());
            int capRow = CudaTopKQueryEstimatedPlan.rowCapacity(p, ctx);
            ran++;
            for (int h = 0; h < 2; h++) {
                String what = "case " + i + " " + ctx + " k " + k + " " + p.forced() + " head " + h;
                int[][] sel = p.select(ctx, EstimateData.rows(x.q(), 0, h), EstimateData.rows(x.k(), 0, h));
                HeadLayout mine = CudaTopKQueryEstimatedPlan.hostLayout(ctx, p.forced(), sel);
                HeadLayout host = plan.layouts().get(plan.layoutIndex(0, h));
                assertEquals(nq, mine.tileCount(), what);
                assertTrue(mine.coversEachRowOnce(), what);
                Set<Long> a = pairs(mine);
                assertEquals(pairs(host), a, what + ": admitted pairs");
                assertEquals(a.size(), mine.unconditionalKeys().length, what + ": every pair listed once");
                for (int row = 0; row < nq; row++) {
                    assertEquals(row, mine.rowStart(row), what);
                    assertEquals(1, mine.rowCount(row), what);
                    assertTrue(mine.unconditionalEnd(row) - mine.unconditionalStart(row) <= capRow, what);
                    assertTrue(sel[row].length <= Math.min(k, nk), what);
                }
                assertEquals(0, mine.fullBlocks().length + mine.partialBlocks().length + mine.gatherKeys().length, what);
                int[][] lists = emit(sel, ctx, p.forced());
                int[][] want = {mine.fullOffsets(), mine.fullBlocks(), mine.partialOffsets(), mine.partialBlocks(),
                        mine.gatherOffsets(), mine.gatherKeys(), mine.unconditionalOffsets(), mine.unconditionalKeys()};
                for (int j = 0; j < want.length; j++) {
                    assertArrayEquals(want[j], lists[j], what + " list " + j);
                }
                forcedAndSelected += lists[7].length;
            }
        }
        assertEquals(60, ran);
        assertTrue(forcedAndSelected > 10000, forcedAndSelected + " keys listed");
    }

    @Test
    void hostLayoutNeedsOneListPerRow() {
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, 10, 10, 16), Options.causalMask());
        assertThrows(IllegalArgumentException.class, () -> CudaTopKQueryEstimatedPlan.hostLayout(ctx, ForcedKeys.NONE,
                new int[9][]));
    }

    @Test
    void theWorkListRunsEverySliceRowOnceLongestFirst() {
        AttentionShape s = new AttentionShape(2, 3, 1, 150, 170, 64, 64);
        for (boolean causal : new boolean[] {true, false}) {
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(128, 128)));
            int capRow = 60;
            for (int rows : new int[] {64, 128}) {
                int[] w = CudaTopKQueryEstimatedPlan.workItems(ctx, capRow, rows);
                assertEquals(W_STRIDE * 6 * 150, w.length);
                Set<Long> seen = new HashSet<>();
                long before = Long.MAX_VALUE;
                for (int at = 0; at < w.length; at += W_STRIDE) {
                    int slice = w[at + W_SLICE];
                    int row = w[at + W_TILE];
                    assertEquals(slice, w[at + W_LAYOUT], "layout l is slice l");
                    assertEquals(0, w[at + W_ROW_BEGIN]);
                    assertEquals(-1, w[at + W_ENTRY_BASE], "written directly");
                    assertTrue(seen.add((long) slice << 32 | row), "once");
                    long last = causal ? Math.min(169, row + 20) : 169;
                    long cost = Math.min(last + 1, capRow);
                    assertTrue(cost <= before, "longest first");
                    before = cost;
                }
                assertEquals(6 * 150, seen.size());
            }
        }
        // causal rows that see fewer keys than a row's room: the bound counts what they see
        PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, 100, 100, 64), Options.causalMask());
        double want = (60.0 * 61 / 2 + 40.0 * 60) / (100.0 * 101 / 2);
        assertEquals(want, CudaDeviceEstimatedPlan.keptFraction(ctx, 1, 60), 1e-12);
    }

    /** (row, key) pairs a layout admits, over all its tiles. */
    private static Set<Long> pairs(HeadLayout h) {
        Set<Long> out = new TreeSet<>();
        for (int t = 0; t < h.tileCount(); t++) {
            for (int i = 0; i < h.rowCount(t); i++) {
                int row = h.row(t, i);
                h.forEachAdmittedKey(t, row, (key, w) -> assertTrue(out.add((long) row << 32 | key), "a pair twice"));
            }
        }
        return out;
    }

    /** Keys rounded to a few values: many equal scores. */
    private static void coarse(Tensor k, SplittableRandom r) {
        float[] row = new float[k.dim()];
        for (int h = 0; h < k.heads(); h++) {
            for (int i = 0; i < k.seqLen(); i++) {
                for (int x = 0; x < row.length; x++) {
                    row[x] = r.nextInt(-1, 2);
                }
                k.writeRow(0, h, i, row, 0);
            }
        }
    }

    /**
     * {@code sparsa_tq_emit} of one slice, line for line: the zero offsets of the empty block and gather
     * lists, then per row its sinks, the selected keys below its window, the window, the other selected
     * keys, with prefix offsets.
     */
    private static int[][] emit(int[][] sel, PlanContext ctx, ForcedKeys f) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        boolean causal = ctx.causal();
        int[] off = new int[nq + 1];
        int total = 0;
        for (int r = 0; r < nq; r++) {
            long p = (long) r + ctx.queryOffset();
            long last = causal ? Math.min(nk - 1L, p) : nk - 1L;
            int nS = (int) Math.max(0, Math.min(f.sinks(), last + 1));
            long wLo = Math.max(f.sinks(), p - f.window() + 1);
            long wHi = Math.min(last, p);
            total += nS + (int) Math.max(0, wHi - wLo + 1) + sel[r].length;
        }
        int[] keys = new int[total];
        int at = 0;
        for (int r = 0; r < nq; r++) {
            long p = (long) r + ctx.queryOffset();
            long last = causal ? Math.min(nk - 1L, p) : nk - 1L;
            int nS = (int) Math.max(0, Math.min(f.sinks(), last + 1));
            long wLo = Math.max(f.sinks(), p - f.window() + 1);
            long wHi = Math.min(last, p);
            int c = sel[r].length;
            int j = 0;
            for (int key = 0; key < nS; key++) {
                keys[at++] = key;
            }
            for (; j < c && sel[r][j] < wLo; j++) {
                keys[at++] = sel[r][j];
            }
            for (long key = wLo; key <= wHi; key++) {
                keys[at++] = (int) key;
            }
            for (; j < c; j++) {
                keys[at++] = sel[r][j];
            }
            off[r + 1] = at;
        }
        int[] none = new int[nq + 1];
        return new int[][] {none, new int[0], none.clone(), new int[0], none.clone(), new int[0], off, keys};
    }
}
