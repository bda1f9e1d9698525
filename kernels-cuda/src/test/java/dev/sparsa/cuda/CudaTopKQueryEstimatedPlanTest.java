package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimateCases.order;
import static dev.sparsa.cuda.EstimateCases.pairs;
import static dev.sparsa.cuda.EstimateCases.visible;
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
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which contexts the device estimate of {@link TopKPerQuery} takes ({@link
 * CudaTopKQueryEstimatedPlan#refusal}); the per-row lists of {@link CudaTopKQueryEstimatedPlan#hostLayout}
 * admit, row by row, exactly the keys {@code TopKPerQuery.plan} admits (its token-set encoding) and
 * fit the skeleton's room; {@code sparsa_tq_emit} and {@code sparsa_tq_emit_rows} (transcribed below line for line) write
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
    void scratchSizingBoundsTheChunksAndCoversEveryRowOnce() {
        // bf16 B1 H8 D128 N 32768: 2 MiB per row group, 512 groups (1 GiB) per chunk, 32 chunks
        assertEquals(512, CudaTopKQueryEstimatedPlan.chunkGroups(8, 32768, 32768));
        assertEquals(1L << 30, CudaTopKQueryEstimatedPlan.scratchBytes(8, 32768, 32768));
        // small problems: all groups at once, the scratch no larger than they need
        assertEquals(6, CudaTopKQueryEstimatedPlan.chunkGroups(2, 37, 5));
        assertEquals(6L * 16 * 5 * 4, CudaTopKQueryEstimatedPlan.scratchBytes(2, 37, 5));
        // a budget below one group still scores one group per chunk
        assertEquals(1, CudaTopKQueryEstimatedPlan.chunkGroups(3, 100, 1000, 10));
        // D 128: 16 query rows and 128 keys of 129 floats
        assertEquals(4 * (128 * 16 + 128 * 129), CudaTopKQueryEstimatedPlan.scoreShared(128));
        assertTrue(CudaTopKQueryEstimatedPlan.scoreShared(256) <= 227 * 1024);
        // the ranks' shared memory of the 32 chunks: a quarter of a slice each, 8192 more keys each time
        PlanContext big = PlanContext.of(AttentionShape.of(1, 8, 32768, 32768, 128), Options.causalMask());
        for (int j = 0; j < 32; j++) {
            assertEquals(8192 * (j % 4 + 1), CudaTopKQueryEstimatedPlan.rankKeys(big, 2048, 512L * j, 512));
        }
        for (int[] c : new int[][] {{1, 1, 1}, {3, 17, 40}, {8, 33, 100}, {5, 160, 7}, {64, 1000, 1000}, {3, 3000, 2000}}) {
            int slices = c[0];
            int nq = c[1];
            int nk = c[2];
            PlanContext ctx = PlanContext.of(AttentionShape.of(1, slices, nq, nk, 64),
                    Options.causalMask().withQueryOffset(nq <= nk ? nk - nq : null));
            for (long budget : new long[] {1, 4L * 16 * nk * 3, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES}) {
                long chunk = CudaTopKQueryEstimatedPlan.chunkGroups(slices, nq, nk, budget);
                long scratchInts = chunk * 16 * nk;
                assertTrue(4 * scratchInts <= Math.max(budget, 4L * 16 * nk), "within the budget or one group");
                int groups = CudaTopKQueryEstimatedPlan.groups(nq);
                long total = (long) slices * groups;
                int[] seen = new int[slices * nq];
                for (long g0 = 0; g0 < total; g0 += chunk) {
                    int m = (int) Math.min(chunk, total - g0);
                    int rankKeys = CudaTopKQueryEstimatedPlan.rankKeys(ctx, groups, g0, m);
                    assertTrue(rankKeys <= nk);
                    // sparsa_tq_rank's decoding of its block index
                    for (int bx = 0; bx < m * 16; bx++) {
                        long item = g0 + bx / 16;
                        int slice = (int) (item / groups);
                        int r = (int) (item % groups) * 16 + bx % 16;
                        if (r < nq) {
                            seen[slice * nq + r]++;
                            assertTrue(visible(ctx, r) <= rankKeys, "the row's keys fit the rank's shared memory");
                            assertTrue((long) (bx + 1) * nk <= scratchInts, "the row's scratch lies within it");
                        }
                    }
                }
                for (int i = 0; i < seen.length; i++) {
                    assertEquals(1, seen[i], "slice row " + i);
                }
            }
        }
    }

    @Test
    void theScoresKernelsTilingSelectsWhatTheCpuSelects() {
        int cases = 0;
        for (int i = 0; i < 12; i++) {
            SplittableRandom r = new SplittableRandom(7000 + i);
            boolean causal = i % 2 == 0;
            int nk = r.nextInt(1, 300);
            int nq = i % 3 == 0 ? nk : r.nextInt(1, 200);
            int dim = i % 4 == 3 ? 24 : 16;
            Integer offset = causal && nq <= nk && i % 3 != 0 ? nk - nq : null;
            AttentionShape s = AttentionShape.of(1, 3, nq, nk, dim);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withQueryOffset(offset));
            int k = r.nextInt(1, Math.max(2, nk / 2));
            TopKPerQuery p = new TopKPerQuery(k, new ForcedKeys(r.nextInt(0, 10), r.nextInt(0, 40)));
            Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
            if (i % 3 == 1) {
                coarse(x.k(), r);
            }
            float[][] q = new float[3][];
            float[][] kr = new float[3][];
            for (int h = 0; h < 3; h++) {
                q[h] = EstimateData.rows(x.q(), 0, h);
                kr[h] = EstimateData.rows(x.k(), 0, h);
            }
            // a budget of a few groups: several chunks
            long chunk = CudaTopKQueryEstimatedPlan.chunkGroups(3, nq, nk, 4L * 16 * nk * 2);
            int[][][] got = tiledSelection(ctx, p, q, kr, chunk);
            for (int h = 0; h < 3; h++) {
                int[][] want = p.select(ctx, q[h], kr[h]);
                for (int row = 0; row < nq; row++) {
                    assertArrayEquals(want[row], got[h][row], "case " + i + " head " + h + " row " + row);
                }
            }
            cases++;
        }
        assertEquals(12, cases);
    }

    /**
     * sparsa_tq_scores (row groups of 16, key tiles of 128 zero-padded, one f32 fma chain per (row, key)
     * over ascending channels, order keys into the chunk's scratch rows) and sparsa_tq_rank (forced keys
     * set aside, then the k smallest (order key, key) pairs, ascending), transcribed for one batch.
     */
    private static int[][][] tiledSelection(PlanContext ctx, TopKPerQuery p, float[][] q, float[][] kr, long chunk) {
        int slices = q.length;
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int dim = ctx.shape().headDim();
        int groups = CudaTopKQueryEstimatedPlan.groups(nq);
        long total = (long) slices * groups;
        int k = Math.min(p.k(), nk);
        int[][][] out = new int[slices][nq][];
        for (long g0 = 0; g0 < total; g0 += chunk) {
            int m = (int) Math.min(chunk, total - g0);
            int[] scratch = new int[(int) (chunk * 16 * nk)];
            java.util.Arrays.fill(scratch, 0x5A5A5A5A); // rows not written stay garbage
            for (int bx = 0; bx < m; bx++) {
                long item = g0 + bx;
                int slice = (int) (item / groups);
                int r0 = (int) (item % groups) * 16;
                int rows = Math.min(16, nq - r0);
                int nMax = visible(ctx, r0 + rows - 1);
                for (int key0 = 0; key0 < nMax; key0 += 128) {
                    for (int col = 0; col < 128; col++) {
                        int key = key0 + col;
                        for (int rr = 0; rr < 16; rr++) {
                            float acc = 0f;
                            for (int c = 0; c < dim; c++) {
                                float qv = rr < rows ? q[slice][(r0 + rr) * dim + c] : 0f;
                                float kv = key < nMax ? kr[slice][key * dim + c] : 0f;
                                acc = Math.fma(qv, kv, acc);
                            }
                            if (rr < rows && key < visible(ctx, r0 + rr)) {
                                scratch[(bx * 16 + rr) * nk + key] = order(acc);
                            }
                        }
                    }
                }
            }
            for (int bx = 0; bx < m * 16; bx++) {
                long item = g0 + bx / 16;
                int slice = (int) (item / groups);
                int r = (int) (item % groups) * 16 + bx % 16;
                if (r >= nq) {
                    continue;
                }
                int n = visible(ctx, r);
                long pos = (long) r + ctx.queryOffset();
                long fLo = Math.max(0, pos - p.forced().window() + 1);
                long fHi = Math.min(n - 1L, pos);
                List<long[]> cand = new ArrayList<>();
                for (int key = 0; key < n; key++) {
                    boolean forced = key < p.forced().sinks() || (key >= fLo && key <= fHi);
                    if (!forced) {
                        cand.add(new long[] {Integer.toUnsignedLong(scratch[bx * nk + key]), key});
                    }
                }
                cand.sort((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
                int c = Math.min(k, cand.size());
                int[] sel = new int[c];
                for (int j = 0; j < c; j++) {
                    sel[j] = (int) cand.get(j)[1];
                }
                java.util.Arrays.sort(sel);
                out[slice][r] = sel;
            }
        }
        return out;
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
     * {@code sparsa_tq_emit} then {@code sparsa_tq_emit_rows} of one slice, line for line: the zero
     * offsets of the empty block and gather lists; the rows' prefix offsets; then per row, at its
     * offset, its sinks, the selected keys below its window (counted, as the warp does), the window,
     * the other selected keys.
     */
    private static int[][] emit(int[][] sel, PlanContext ctx, ForcedKeys f) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        boolean causal = ctx.causal();
        int[] off = new int[nq + 1];
        int at = 0;
        for (int r = 0; r < nq; r++) {
            long p = (long) r + ctx.queryOffset();
            long last = causal ? Math.min(nk - 1L, p) : nk - 1L;
            int nS = (int) Math.max(0, Math.min(f.sinks(), last + 1));
            long wLo = Math.max(f.sinks(), p - f.window() + 1);
            long wHi = Math.min(last, p);
            at += nS + (int) Math.max(0, wHi - wLo + 1) + sel[r].length;
            off[r + 1] = at;
        }
        int[] keys = new int[at];
        for (int r = 0; r < nq; r++) {
            long p = (long) r + ctx.queryOffset();
            long last = causal ? Math.min(nk - 1L, p) : nk - 1L;
            int nS = (int) Math.max(0, Math.min(f.sinks(), last + 1));
            long wLo = Math.max(f.sinks(), p - f.window() + 1);
            long wHi = Math.min(last, p);
            int c = sel[r].length;
            int below = 0;
            for (int j = 0; j < c; j++) {
                below += sel[r][j] < wLo ? 1 : 0;
            }
            int w = off[r];
            for (int i = 0; i < nS; i++) {
                keys[w + i] = i;
            }
            w += nS;
            for (int j = 0; j < below; j++) {
                keys[w + j] = sel[r][j];
            }
            w += below;
            int nW = (int) Math.max(0, wHi - wLo + 1);
            for (int i = 0; i < nW; i++) {
                keys[w + i] = (int) (wLo + i);
            }
            w += nW;
            for (int j = below; j < c; j++) {
                keys[w + j - below] = sel[r][j];
            }
        }
        int[] none = new int[nq + 1];
        return new int[][] {none, new int[0], none.clone(), new int[0], none.clone(), new int[0], off, keys};
    }
}
