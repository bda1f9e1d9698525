package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;
import static dev.sparsa.cuda.EstimateCases.order;
import static dev.sparsa.cuda.EstimateCases.pairs;
import static dev.sparsa.cuda.EstimateCases.visible;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.dsa.IndexerInputs;
import dev.sparsa.patterns.dsa.LightningIndexer;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which patterns and contexts the device estimate of {@link LightningIndexer} takes
 * ({@link CudaLightningIndexerEstimatedPlan#refusal}); {@code sparsa_li_scores} and {@code sparsa_tq_rank}
 * (transcribed below: row groups of 16, key tiles of 128, heads a few at a time, chunks of row groups,
 * order keys) select what {@link LightningIndexer#select} selects; the per-row lists of {@link
 * CudaLightningIndexerEstimatedPlan#hostLayout} admit exactly the pairs {@code LightningIndexer.plan}
 * admits; and the work lists are the ones {@link DevicePlan} builds for the host road's plan
 * (head-packed under GQA, the plain list of one row per CTA without it).
 */
class CudaLightningIndexerEstimatedPlanTest {

    @Test
    void refusesWhatItCannotHold() {
        AttentionShape s = new AttentionShape(2, 8, 1, 100, 120, 64, 64);
        PlanContext ctx = PlanContext.of(s, Options.causalMask());
        IndexerInputs in = IndexerData.inputs(1, 2, 4, 100, 120, 16, DType.BF16, DType.F32, IndexerData.Kind.RANDOM);
        LightningIndexer li = LightningIndexer.of(32, in);
        assertTrue(CudaLightningIndexerEstimatedPlan.refusal(LightningIndexer.projected(32, 4, 16, 7), ctx)
                .contains("projected"));
        assertTrue(CudaLightningIndexerEstimatedPlan.refusal(li, ctx).contains("not in CUDA memory"));
        assertNotNull(CudaLightningIndexerEstimatedPlan.refusal(null, ctx));
        assertNull(CudaLightningIndexerEstimatedPlan.shapeRefusal(li, in, ctx));
        assertNull(CudaLightningIndexerEstimatedPlan.shapeRefusal(LightningIndexer.of(5000, in), in, ctx), "top k above the keys");
        // the inputs do not fit the call
        PlanContext other = PlanContext.of(new AttentionShape(2, 8, 1, 100, 121, 64, 64), Options.causalMask());
        assertTrue(CudaLightningIndexerEstimatedPlan.shapeRefusal(li, in, other).contains("do not fit"));
        PlanContext oneEntry = PlanContext.of(new AttentionShape(1, 8, 1, 100, 120, 64, 64), Options.causalMask());
        assertTrue(CudaLightningIndexerEstimatedPlan.shapeRefusal(li, in, oneEntry).contains("do not fit"));
        // queries and keys of two dtypes
        IndexerInputs mixed = new IndexerInputs(in.queries().to(DType.F32, Layout.BHSD), in.keys(), in.weights());
        assertTrue(CudaLightningIndexerEstimatedPlan.shapeRefusal(li, mixed, ctx).contains("one dtype"));
        // too many keys for a row's order keys in shared memory
        int many = CudaTopKEstimatedPlan.MAX_KEYS + 1;
        IndexerInputs wide = IndexerData.inputs(2, 1, 1, 4, many, 4, DType.F32, DType.F32, IndexerData.Kind.RANDOM);
        PlanContext wideCtx = PlanContext.of(AttentionShape.of(1, 1, 4, many, 64), Options.defaults());
        assertTrue(CudaLightningIndexerEstimatedPlan.shapeRefusal(LightningIndexer.of(8, wide), wide, wideCtx)
                .contains("at most"));
        // 40 entries of 32768 rows keeping 2048 keys: 2.7e9 ints of lists
        IndexerInputs big = IndexerData.inputs(3, 40, 1, 32768, 32768, 1, DType.F32, DType.F32, IndexerData.Kind.RANDOM);
        PlanContext bigCtx = PlanContext.of(AttentionShape.of(40, 1, 32768, 32768, 64), Options.causalMask());
        String why = CudaLightningIndexerEstimatedPlan.shapeRefusal(LightningIndexer.of(2048, big), big, bigCtx);
        assertTrue(why != null && why.contains("exceed"), why);
        // the DeepSeek proportions of the benchmark: one entry, 32 heads over one KV head, 32k, top 2048
        IndexerInputs ds = IndexerData.inputs(4, 1, 4, 32768, 32768, 1, DType.F32, DType.F32, IndexerData.Kind.RANDOM);
        PlanContext dsCtx = PlanContext.of(new AttentionShape(1, 32, 1, 32768, 32768, 128, 128), Options.causalMask());
        assertNull(CudaLightningIndexerEstimatedPlan.shapeRefusal(LightningIndexer.of(2048, ds), ds, dsCtx));
    }

    @Test
    void theScoresKernelsTilingSelectsWhatTheCpuSelects() {
        int cases = 0;
        DType[] types = {DType.F32, DType.BF16, DType.F16};
        IndexerData.Kind[] kinds = IndexerData.Kind.values();
        for (int i = 0; i < 15; i++) {
            SplittableRandom r = new SplittableRandom(8100 + i);
            boolean causal = i % 2 == 0;
            int nk = r.nextInt(1, 400);
            int nq = i % 3 == 0 ? nk : r.nextInt(1, 200);
            int batch = r.nextInt(1, 3);
            int heads = r.nextInt(1, 6);
            int dim = new int[] {8, 16, 24, 32}[r.nextInt(4)];
            Integer offset = causal && nq <= nk && i % 3 != 0 ? nk - nq : null;
            AttentionShape s = new AttentionShape(batch, 4, 2, nq, nk, 64, 64);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withQueryOffset(offset));
            IndexerInputs in = IndexerData.inputs(i, batch, heads, nq, nk, dim, types[i % 3], types[(i / 3) % 3],
                    kinds[i % kinds.length]);
            int k = r.nextInt(4) == 0 ? nk + 3 : r.nextInt(1, Math.max(2, nk / 2));
            LightningIndexer li = LightningIndexer.of(k, in);
            assertNull(CudaLightningIndexerEstimatedPlan.shapeRefusal(li, in, ctx));
            // a budget of a few row groups (several chunks, some spanning two entries); 1, 2 or all heads at a time
            long chunk = CudaTopKQueryEstimatedPlan.chunkGroups(batch, nq, nk, 4L * 16 * nk * (1 + i % 3));
            int hc = new int[] {1, 2, heads}[i % 3];
            int[][][] got = tiledSelection(ctx, in, Math.min(k, nk), chunk, hc);
            for (int b = 0; b < batch; b++) {
                int[][] want = li.select(ctx, in, b);
                for (int row = 0; row < nq; row++) {
                    assertArrayEquals(want[row], got[b][row], "case " + i + " entry " + b + " row " + row);
                }
            }
            cases++;
        }
        assertEquals(15, cases);
    }

    /**
     * sparsa_li_scores (row groups of 16, key tiles of 128 zero-padded, the queries of {@code hc} heads at
     * a time; per head one f32 fma chain per (row, key) over ascending channels, then fma(w, ReLU(dot),
     * score); order keys into the chunk's scratch rows) and sparsa_tq_rank (no forced keys: the k smallest
     * (order key, key) pairs below 0xFFFFFFFF, ascending), transcribed.
     */
    private static int[][][] tiledSelection(PlanContext ctx, IndexerInputs in, int k, long chunk, int hc) {
        int batch = ctx.shape().batch();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int heads = in.heads();
        int dim = in.dim();
        float[][][] q = new float[batch][heads][];
        float[][] kr = new float[batch][];
        float[][] w = new float[batch][];
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < heads; j++) {
                q[b][j] = EstimateData.rows(in.queries(), b, j);
            }
            kr[b] = EstimateData.rows(in.keys(), b, 0);
            w[b] = EstimateData.rows(in.weights(), b, 0);
        }
        int groups = CudaTopKQueryEstimatedPlan.groups(nq);
        long total = (long) batch * groups;
        int[][][] out = new int[batch][nq][];
        for (long g0 = 0; g0 < total; g0 += chunk) {
            int m = (int) Math.min(chunk, total - g0);
            int[] scratch = new int[(int) (chunk * 16 * nk)];
            Arrays.fill(scratch, 0x5A5A5A5A);
            for (int bx = 0; bx < m; bx++) {
                long item = g0 + bx;
                int b = (int) (item / groups);
                int r0 = (int) (item % groups) * 16;
                int rows = Math.min(16, nq - r0);
                int nMax = visible(ctx, r0 + rows - 1);
                for (int key0 = 0; key0 < nMax; key0 += 128) {
                    for (int col = 0; col < 128; col++) {
                        int key = key0 + col;
                        for (int rr = 0; rr < 16; rr++) {
                            float score = 0f;
                            for (int j0 = 0; j0 < heads; j0 += hc) {
                                for (int j = j0; j < Math.min(heads, j0 + hc); j++) {
                                    float acc = 0f;
                                    for (int c = 0; c < dim; c++) {
                                        float qv = rr < rows ? q[b][j][(r0 + rr) * dim + c] : 0f;
                                        float kv = key < nMax ? kr[b][key * dim + c] : 0f;
                                        acc = Math.fma(qv, kv, acc);
                                    }
                                    float wv = rr < rows ? w[b][(r0 + rr) * heads + j] : 0f;
                                    score = Math.fma(wv, acc != acc ? acc : (acc > 0f ? acc : 0f), score);
                                }
                            }
                            if (rr < rows && key < visible(ctx, r0 + rr)) {
                                scratch[(bx * 16 + rr) * nk + key] = order(score);
                            }
                        }
                    }
                }
            }
            for (int bx = 0; bx < m * 16; bx++) {
                long item = g0 + bx / 16;
                int b = (int) (item / groups);
                int r = (int) (item % groups) * 16 + bx % 16;
                if (r >= nq) {
                    continue;
                }
                int n = visible(ctx, r);
                List<long[]> cand = new ArrayList<>();
                for (int key = 0; key < n; key++) {
                    if (scratch[bx * nk + key] != 0xFFFFFFFF) {
                        cand.add(new long[] {Integer.toUnsignedLong(scratch[bx * nk + key]), key});
                    }
                }
                cand.sort((x, y) -> x[0] != y[0] ? Long.compare(x[0], y[0]) : Long.compare(x[1], y[1]));
                int c = Math.min(k, cand.size());
                int[] sel = new int[c];
                for (int j = 0; j < c; j++) {
                    sel[j] = (int) cand.get(j)[1];
                }
                Arrays.sort(sel);
                out[b][r] = sel;
            }
        }
        return out;
    }

    @Test
    void perRowListsAdmitTheHostPlansPairsAndTheWorkListsAreTheHostRoads() {
        int[][] shapes = {
            // batch, qHeads, kvHeads, nq, nk, causal
            {1, 32, 1, 300, 300, 1},   // MQA: one CTA stacks the 32 heads of a row
            {2, 8, 2, 70, 130, 0},     // GQA 4
            {1, 6, 6, 40, 40, 1},      // no sharing: the plain list of one row per CTA
            {1, 4, 4, 12, 50, 0},      // no sharing, a few rows: no gather list
            {1, 4, 2, 9, 9, 1},        // GQA 2, a few rows: still head-packed, as DevicePlan packs them
            {1, 128, 1, 20, 30, 1},    // a group of 128: two CTAs of 64 heads per row
        };
        for (int[] sh : shapes) {
            AttentionShape s = new AttentionShape(sh[0], sh[1], sh[2], sh[3], sh[4], 64, 64);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(sh[5] == 1));
            IndexerInputs in = IndexerData.inputs(sh[3], sh[0], 3, sh[3], sh[4], 16, DType.F32, DType.F32,
                    IndexerData.Kind.RANDOM);
            LightningIndexer li = LightningIndexer.of(Math.max(1, sh[4] / 4), in);
            Problems.Qkv x = Problems.qkv(5, s, DType.F32, Layout.BHSD);
            SparsePlan planned = li.plan(ctx, x.q(), x.k());
            SparsePlan.Builder twin = SparsePlan.builder(ctx).describe("per-row lists of " + li.name());
            int cap = CudaLightningIndexerEstimatedPlan.rowCapacity(li, ctx);
            String what = Arrays.toString(sh);
            for (int b = 0; b < s.batch(); b++) {
                HeadLayout mine = CudaLightningIndexerEstimatedPlan.hostLayout(ctx, li.select(ctx, in, b));
                HeadLayout host = planned.layouts().get(planned.layoutIndex(b, 0));
                assertEquals(pairs(host), pairs(mine), what + " entry " + b + ": admitted pairs");
                assertTrue(mine.coversEachRowOnce() && mine.rowsDisjoint(), what);
                for (int row = 0; row < s.queryLength(); row++) {
                    assertTrue(mine.unconditionalEnd(row) - mine.unconditionalStart(row) <= cap, what);
                }
                for (int h = 0; h < s.qHeads(); h++) {
                    twin.slice(b, h, mine);
                }
            }
            SparsePlan hostRoad = twin.build();
            for (int b = 0; b < s.batch(); b++) {
                for (int h = 0; h < s.qHeads(); h++) {
                    assertEquals(b, hostRoad.layoutIndex(b, h), what + ": layout b is entry b");
                }
            }
            long[] bases = DevicePlan.entryBases(hostRoad);
            // the geometry's lists: one item per (slice, row), layout of the slice's entry
            for (int rows : new int[] {64, 128}) {
                assertEquals(tuples(DevicePlan.packWork(DevicePlan.workItems(hostRoad, bases, rows, false))),
                        tuples(CudaLightningIndexerEstimatedPlan.workItems(ctx, cap, rows, false)), what + " rows " + rows);
            }
            // the gather list: the one DevicePlan gives the host road's plan
            List<long[]> packed = DevicePlan.workItems(hostRoad, bases, DevicePlan.PACKED_ROWS, true);
            int[] want = null;
            if (packed != null && 4L * packed.size() <= 3L * DevicePlan.unpackedItems(hostRoad, DevicePlan.PACKED_ROWS)) {
                want = DevicePlan.packWork(packed);
            } else if (DevicePlan.fewRowsPerTile(hostRoad)) {
                want = DevicePlan.packWork(DevicePlan.workItems(hostRoad, bases, DevicePlan.PACKED_ROWS, false));
            }
            int[] got = CudaLightningIndexerEstimatedPlan.gatherItems(ctx, cap);
            assertEquals(want == null, got == null, what + ": a gather list");
            if (want != null) {
                assertEquals(tuples(want), tuples(got), what + ": the gather list");
                int most = 0;
                for (int at = 0; at < got.length; at += W_STRIDE) {
                    most = Math.max(most, got[at + W_PACK_HEADS]);
                }
                assertEquals(s.groupSize() > 1 ? Math.min(64, s.groupSize()) : 0, most, what + ": heads per CTA");
            }
        }
    }

    /** Work items as sorted strings of their fields (the order of equal-cost items aside). */
    private static List<String> tuples(int[] w) {
        List<String> out = new ArrayList<>();
        for (int at = 0; at < w.length; at += W_STRIDE) {
            out.add(Arrays.toString(Arrays.copyOfRange(w, at, at + W_STRIDE)));
        }
        out.sort(null);
        return out;
    }

    @Test
    void theScoresKeepEveryHeadsQueriesInSharedMemoryWhenTheyFit() {
        // DeepSeek's proportions scaled down (4 heads of 32): all at once
        assertEquals(4, CudaLightningIndexerEstimatedPlan.headsCached(4, 32));
        assertEquals(4 * (4 * 16 + 4 * 32 * 16 + 128 * 33), CudaLightningIndexerEstimatedPlan.scoreShared(4, 4, 32));
        // DeepSeek-V3.2's indexer (64 heads of 128): a few at a time, within the target
        int hc = CudaLightningIndexerEstimatedPlan.headsCached(64, 128);
        assertTrue(hc >= 1 && hc < 64, "" + hc);
        assertTrue(CudaLightningIndexerEstimatedPlan.scoreShared(64, hc, 128) <= CudaLightningIndexerEstimatedPlan.SCORE_SHARED_TARGET);
        assertTrue(CudaLightningIndexerEstimatedPlan.scoreShared(64, hc + 1, 128) > CudaLightningIndexerEstimatedPlan.SCORE_SHARED_TARGET);
        // a dimension too large for the target still runs one head at a time
        assertEquals(1, CudaLightningIndexerEstimatedPlan.headsCached(8, 1024));
    }
}
