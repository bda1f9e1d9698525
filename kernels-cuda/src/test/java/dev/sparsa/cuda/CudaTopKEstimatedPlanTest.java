package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.topk.TopKPerQueryBlock;
import dev.sparsa.plan.ElementPredicate;
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
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Without a GPU: which contexts the device estimate of {@link TopKPerQueryBlock} takes ({@link
 * CudaTopKEstimatedPlan#refusal}), the skeleton's capacities against a count by brute force, the
 * scores' scratch chunks (every tile once, its keys within the ranking's shared memory), the selection
 * of {@code sparsa_tk_mean}, {@code sparsa_tk_scores} and {@code sparsa_tk_rank} (transcribed below,
 * chunk by chunk) against {@link TopKPerQueryBlock#select}, and the
 * layout construction of {@code sparsa_tk_emit} ({@code tkTileLists}, transcribed below line for line)
 * and of the kernels that write it a warp per tile ({@code sparsa_tk_emit_counts}, {@code
 * sparsa_tk_emit_offsets}, {@code sparsa_tk_emit_tiles} with {@code tkTileListsWarp}, transcribed
 * lane by lane into an int pool of two slices) against the host plan's lists on contexts it takes:
 * causal and not, query offsets, Nq ≠ Nk, lengths not multiples of the tile, sinks and windows, k
 * above the visible keys, data full of ties.
 */
class CudaTopKEstimatedPlanTest {

    private static TopKPerQueryBlock pooled(int k, int sinks, int window) {
        return new TopKPerQueryBlock(k, new ForcedKeys(sinks, window), TopKPerQueryBlock.Scoring.POOLED_QUERY);
    }

    @Test
    void refusesWhatItCannotWriteExactly() {
        AttentionShape s = AttentionShape.of(1, 2, 1000, 1000, 64);
        PlanContext causal = PlanContext.of(s, Options.causalMask());
        assertNull(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 64), causal));
        assertNull(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 128),
                PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(128, 128)))));
        assertNull(CudaTopKEstimatedPlan.refusal(pooled(5000, 0, 100), PlanContext.of(s, Options.defaults())),
                "k above the keys");
        assertTrue(CudaTopKEstimatedPlan.refusal(new TopKPerQueryBlock(64, new ForcedKeys(4, 64),
                TopKPerQueryBlock.Scoring.EXACT_MASS), causal).contains("EXACT_MASS"));
        assertTrue(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 63), causal).contains("window 63"));
        assertTrue(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 0), causal).contains("window 0"));
        assertTrue(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 100),
                PlanContext.of(s, Options.causalMask().withGeometry(new TileGeometry(128, 128)))).contains("window 100"));
        assertNotNull(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 64),
                PlanContext.of(AttentionShape.of(1, 1, 64, CudaTopKEstimatedPlan.MAX_KEYS + 1, 64), Options.defaults())));
        assertNull(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 64),
                PlanContext.of(AttentionShape.of(1, 1, 64, CudaTopKEstimatedPlan.MAX_KEYS, 64), Options.defaults())));
        // a window of 4000 keys spans 64 blocks of 64 in some tile, 4100 more
        PlanContext longCtx = PlanContext.of(AttentionShape.of(1, 1, 8192, 8192, 64), Options.causalMask());
        assertNull(CudaTopKEstimatedPlan.refusal(pooled(64, 0, 4000), longCtx));
        assertTrue(CudaTopKEstimatedPlan.refusal(pooled(64, 0, 4100), longCtx).contains("blocks"));
        assertNotNull(CudaTopKEstimatedPlan.refusal(pooled(64, 4, 64),
                PlanContext.of(AttentionShape.of(300, 256, 64, 64, 64), Options.defaults())), "76800 slices");
    }

    @Test
    void windowBlocksCountsEachTilesSinkAndBandBlocks() {
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 200; i++) {
            int g = i % 2 == 0 ? 64 : 128;
            int nq = r.nextInt(1, 900);
            int nk = r.nextInt(1, 900);
            boolean causal = r.nextBoolean();
            PlanContext ctx = PlanContext.of(AttentionShape.of(1, 1, nq, nk, 16),
                    Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            ForcedKeys f = new ForcedKeys(r.nextInt(0, 300), r.nextInt(g, 700));
            int most = 0;
            for (int r0 = 0; r0 < nq; r0 += g) {
                long pLo = (long) r0 + ctx.queryOffset();
                long pHi = pLo + Math.min(g, nq - r0) - 1;
                TreeSet<Long> blocks = new TreeSet<>();
                for (long key = 0; key < Math.min(f.sinks(), nk); key++) {
                    blocks.add(key / g);
                }
                for (long key = Math.max(0, pLo - f.window() + 1); key <= Math.min(nk - 1L, pHi); key++) {
                    blocks.add(key / g);
                }
                most = Math.max(most, blocks.size());
            }
            assertEquals(most, CudaTopKEstimatedPlan.windowBlocks(ctx, f), ctx + " " + f);
        }
        assertEquals(4L * 11 + 10L * (2 * 3 + 192 + 7), CudaTopKEstimatedPlan.sliceInts(10, 3, 192, 7));
        assertEquals(4 * 128 + 4 * 1000, CudaTopKEstimatedPlan.selectShared(128, 1000));
        assertEquals(4 * 80 + 4 * 5, CudaTopKEstimatedPlan.selectShared(78, 5), "the mean rounded up to 4 floats");
        // the most keys fit the shared memory of a block on Hopper (227 KiB) with the static arrays
        assertTrue(CudaTopKEstimatedPlan.selectShared(256, CudaTopKEstimatedPlan.MAX_KEYS)
                + CudaTopKEstimatedPlan.SELECT_STATIC_SHARED <= 227 * 1024);
    }

    @Test
    void theEmitKernelsListsAreTheHostPlans() {
        int ran = 0;
        long gathered = 0;
        long unconditional = 0;
        for (int i = 0; i < 120; i++) {
            SplittableRandom r = new SplittableRandom(1000 + i);
            int g = i % 2 == 0 ? 64 : 128;
            boolean causal = (i / 2) % 2 == 0;
            int nk = r.nextInt(1, 1300);
            int nq = switch (r.nextInt(3)) {
                case 0 -> nk;
                case 1 -> r.nextInt(1, nk + 1);
                default -> r.nextInt(1, 1300);
            };
            int d = 16;
            AttentionShape s = AttentionShape.of(1, 2, nq, nk, d);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withGeometry(new TileGeometry(g, g)));
            int k = r.nextInt(4) == 0 ? nk + r.nextInt(1, 100) : r.nextInt(0, Math.max(1, nk / 2));
            int sinks = r.nextInt(3) == 0 ? 0 : r.nextInt(1, 200);
            int window = r.nextInt(g, Math.max(g + 1, Math.min(1500, 60 * g)));
            if (k == 0 && sinks == 0 && window == 0) {
                k = 1;
            }
            TopKPerQueryBlock p = pooled(k, sinks, window);
            if (CudaTopKEstimatedPlan.refusal(p, ctx) != null) {
                continue;
            }
            Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
            if (i % 3 == 1) {
                coarse(x.k(), r); // exact ties among scores
            }
            SparsePlan plan = p.plan(ctx, x.q(), x.k());
            ran++;
            int[][][] sels = new int[2][][];
            for (int h = 0; h < 2; h++) {
                sels[h] = p.select(ctx, rows(x.q(), h), rows(x.k(), h));
            }
            int[][][] warps = emitWarps(sels, ctx, p.forced(), Math.min(k, nk));
            for (int h = 0; h < 2; h++) {
                int[][] sel = sels[h];
                HeadLayout hl = plan.layouts().get(plan.layoutIndex(0, h));
                int[][] lists = emit(sel, ctx, p.forced());
                String what = "case " + i + " " + ctx + " k " + k + " " + p.forced() + " head " + h;
                String[] names = {"full offsets", "full blocks", "partial offsets", "partial blocks", "gather offsets",
                        "gathered keys", "unconditional offsets", "unconditional keys"};
                int[][] host = {hl.fullOffsets(), hl.fullBlocks(), hl.partialOffsets(), hl.partialBlocks(),
                        hl.gatherOffsets(), hl.gatherKeys(), hl.unconditionalOffsets(), hl.unconditionalKeys()};
                for (int j = 0; j < host.length; j++) {
                    assertArrayEquals(host[j], lists[j], what + " " + names[j]);
                    assertArrayEquals(host[j], warps[h][j], what + " " + names[j] + " (a warp per tile)");
                }
                gathered += lists[5].length;
                unconditional += lists[7].length;
                // every tile's lists fit the skeleton's room
                int capB = CudaTopKEstimatedPlan.windowBlocks(ctx, p.forced());
                for (int t = 0; t + 1 < lists[0].length; t++) {
                    assertTrue(lists[0][t + 1] - lists[0][t] + lists[2][t + 1] - lists[2][t] <= capB, what);
                    assertTrue(lists[4][t + 1] - lists[4][t] <= capB * g, what);
                    assertTrue(lists[6][t + 1] - lists[6][t] <= Math.min(k, nk), what);
                }
            }
        }
        // the cases reach every list: blocks written key by key and unconditional keys
        assertTrue(ran >= 100, ran + " cases taken");
        assertTrue(gathered > 0 && unconditional > 0, gathered + " gathered, " + unconditional + " unconditional");
    }

    @Test
    void theEmitGridIsBoundedAndCoversEveryTileOnce() {
        assertEquals(3 * 2, CudaTopKEstimatedPlan.emitTilesBlocks(3, 17));
        assertEquals(65535 * 16, CudaTopKEstimatedPlan.emitTilesBlocks(65535, 256));
        IllegalArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> CudaTopKEstimatedPlan.emitTilesBlocks(65535, Integer.MAX_VALUE / 64));
        assertTrue(e.getMessage().contains("CTAs"), e.getMessage());
        for (int[] c : new int[][] {{1, 1}, {2, 15}, {3, 16}, {5, 17}, {4, 257}}) {
            int slices = c[0];
            int tiles = c[1];
            int[] seen = new int[slices * tiles];
            int perCta = CudaTopKEstimatedPlan.EMIT_TILES_PER_CTA;
            int ctasPerSlice = (tiles + perCta - 1) / perCta;
            for (int bx = 0; bx < CudaTopKEstimatedPlan.emitTilesBlocks(slices, tiles); bx++) {
                for (int warp = 0; warp < perCta; warp++) {
                    int s = bx / ctasPerSlice;
                    int t = (bx - s * ctasPerSlice) * perCta + warp;
                    if (t < tiles) {
                        seen[s * tiles + t]++;
                    }
                }
            }
            for (int i = 0; i < seen.length; i++) {
                assertEquals(1, seen[i], "slice tile " + i);
            }
        }
    }

    /**
     * {@code sparsa_tk_emit_counts}, {@code sparsa_tk_emit_offsets} and {@code sparsa_tk_emit_tiles}
     * over the selections of {@code sel.length} slices, line for line, into an int pool laid out as
     * the skeleton's (a header, then per slice {@link CudaTopKEstimatedPlan#sliceInts} ints), the
     * pool's untouched ints garbage; read back per slice as {@code CudaTopKEstimatedPlan.lists} reads
     * it.
     */
    private static int[][][] emitWarps(int[][][] sel, PlanContext ctx, ForcedKeys f, int k) {
        int slices = sel.length;
        int tiles = sel[0].length;
        int bc = ctx.geometry().blockCols();
        int capB = Math.max(1, CudaTopKEstimatedPlan.windowBlocks(ctx, f));
        int capG = capB * bc;
        int base = 37;
        int stride = (int) CudaTopKEstimatedPlan.sliceInts(tiles, capB, capG, k);
        int[] ints = new int[base + stride * slices];
        Arrays.fill(ints, 0x5A5A5A5A);
        // the selections as the device holds them: tile t of slice s from (s · tiles + t) · k, its count apart
        int[] flat = new int[Math.max(1, slices * tiles * k)];
        int[] count = new int[slices * tiles];
        for (int s = 0; s < slices; s++) {
            for (int t = 0; t < tiles; t++) {
                System.arraycopy(sel[s][t], 0, flat, (s * tiles + t) * k, sel[s][t].length);
                count[s * tiles + t] = sel[s][t].length;
            }
        }
        int blocks = CudaTopKEstimatedPlan.emitTilesBlocks(slices, tiles);
        int perCta = CudaTopKEstimatedPlan.EMIT_TILES_PER_CTA;
        int ctasPerSlice = (tiles + perCta - 1) / perCta;
        // sparsa_tk_emit_counts
        for (int bx = 0; bx < blocks; bx++) {
            for (int warp = 0; warp < perCta; warp++) {
                int s = bx / ctasPerSlice;
                int t = (bx - s * ctasPerSlice) * perCta + warp;
                if (t >= tiles) {
                    continue;
                }
                int[] off = offsets(base, stride, s, tiles);
                int at = s * tiles + t;
                int[] c = tileListsWarp(flat, at * k, count[at], t, ctx, f, false, ints, 0, 0, 0, 0);
                for (int j = 0; j < 4; j++) {
                    ints[off[j] + t + 1] = c[j];
                }
            }
        }
        // sparsa_tk_emit_offsets: 512 threads per slice, each a run of tiles; an exclusive scan of their sums
        int nt = 512;
        for (int s = 0; s < slices; s++) {
            int[] off = offsets(base, stride, s, tiles);
            int per = (tiles + nt - 1) / nt;
            int[][] at = new int[nt][4];
            int[] run = new int[4];
            for (int tid = 0; tid < nt; tid++) {
                int t0 = Math.min(tiles, tid * per);
                int t1 = Math.min(tiles, t0 + per);
                for (int j = 0; j < 4; j++) {
                    at[tid][j] = run[j];
                    for (int t = t0; t < t1; t++) {
                        run[j] += ints[off[j] + t + 1];
                    }
                }
            }
            for (int j = 0; j < 4; j++) {
                ints[off[j]] = 0;
            }
            for (int tid = 0; tid < nt; tid++) {
                int t0 = Math.min(tiles, tid * per);
                int t1 = Math.min(tiles, t0 + per);
                for (int t = t0; t < t1; t++) {
                    for (int j = 0; j < 4; j++) {
                        at[tid][j] += ints[off[j] + t + 1];
                        ints[off[j] + t + 1] = at[tid][j];
                    }
                }
            }
        }
        // sparsa_tk_emit_tiles
        for (int bx = 0; bx < blocks; bx++) {
            for (int warp = 0; warp < perCta; warp++) {
                int s = bx / ctasPerSlice;
                int t = (bx - s * ctasPerSlice) * perCta + warp;
                if (t >= tiles) {
                    continue;
                }
                int[] off = offsets(base, stride, s, tiles);
                int[] data = {off[3] + tiles + 1, 0, 0, 0};
                data[1] = data[0] + tiles * capB;
                data[2] = data[1] + tiles * capB;
                data[3] = data[2] + tiles * capG;
                int at = s * tiles + t;
                tileListsWarp(flat, at * k, count[at], t, ctx, f, true, ints, data[0] + ints[off[0] + t],
                        data[1] + ints[off[1] + t], data[2] + ints[off[2] + t], data[3] + ints[off[3] + t]);
            }
        }
        // read back: the offsets, then each list's first offsets[tiles] entries
        int[][][] out = new int[slices][8][];
        int[] caps = {capB, capB, capG, k};
        for (int s = 0; s < slices; s++) {
            int[] off = offsets(base, stride, s, tiles);
            int data = off[3] + tiles + 1;
            for (int j = 0; j < 4; j++) {
                out[s][2 * j] = Arrays.copyOfRange(ints, off[j], off[j] + tiles + 1);
                out[s][2 * j + 1] = Arrays.copyOfRange(ints, data, data + out[s][2 * j][tiles]);
                data += tiles * caps[j];
            }
        }
        return out;
    }

    /** {@code tkSliceLists}: where slice s's four offset arrays start. */
    private static int[] offsets(int base, int stride, int s, int tiles) {
        int o = base + s * stride;
        return new int[] {o, o + tiles + 1, o + 2 * (tiles + 1), o + 3 * (tiles + 1)};
    }

    /**
     * {@code tkTileListsWarp} of sparsa_topk_estimate.cuh, line for line, the 32 lanes of the warp run
     * one after the other between its votes: the keys are {@code keys[at, at + n)}; with {@code write},
     * the four lists go to {@code out} from {@code fullAt}, {@code partAt}, {@code gathAt}, {@code
     * uncAt}. Returns the counts {full, partial, gathered, unconditional}.
     */
    private static int[] tileListsWarp(int[] keys, int at, int n, int t, PlanContext ctx, ForcedKeys f, boolean write,
                                       int[] out, int fullAt, int partAt, int gathAt, int uncAt) {
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int window = f.window();
        int sinks = f.sinks();
        boolean causal = ctx.causal();
        ElementPredicate p = CudaTopKEstimatedPlan.layoutPredicate(ctx, f);
        long r0 = (long) t * rows;
        long cnt = Math.min(rows, nq - r0);
        long pLo = r0 + ctx.queryOffset();
        long pHi = pLo + cnt - 1;
        long lo = Math.max(0, pLo - window + 1);
        long hi = Math.min(nk - 1L, pHi);
        int bLo = hi < lo ? 1 : (int) (lo / bc);
        int bHi = hi < lo ? 0 : (int) (hi / bc);
        int sinkBlocks = sinks == 0 || nk == 0 ? 0 : (Math.min(sinks, nk) - 1) / bc + 1;
        int second = Math.max(sinkBlocks, bLo);
        int nSink = sinkBlocks;
        int nBand = bHi >= second ? bHi - second + 1 : 0;
        int nc = nSink + nBand;
        java.util.function.IntUnaryOperator block = i -> i < nSink ? i : second + (i - nSink);
        java.util.function.IntUnaryOperator classOf = i -> {
            if (i >= nc) {
                return 0;
            }
            long k0 = (long) block.applyAsInt(i) * bc;
            long k1 = Math.min(nk, k0 + bc) - 1;
            return classify(pLo, pHi, k0, k1, p.causal(), p.bandLo(), p.bandHi(), p.sinks());
        };
        long vis = 0;
        long isFull = 0;
        for (int lane = 0; lane < 32; lane++) {
            int c0 = classOf.applyAsInt(lane);
            int c1 = classOf.applyAsInt(lane + 32);
            vis |= (c0 != 0 ? 1L << lane : 0) | (c1 != 0 ? 1L << (lane + 32) : 0);
            isFull |= (c0 == 2 ? 1L << lane : 0) | (c1 == 2 ? 1L << (lane + 32) : 0);
        }
        long edge = 0;
        for (int lane = 0; lane < 32; lane++) {
            long mine = 0;
            for (int r = lane; r < n; r += 32) {
                int key = keys[at + r];
                int i = cand(key / bc, nSink, second, bHi);
                if (i >= 0 && (vis >> i & 1) != 0 && key >= sinks && (key <= pHi - window || (!causal && key > pLo))) {
                    mine |= 1L << i;
                }
            }
            edge |= mine; // the lanes' masks or-ed by shuffles
        }
        long listed = vis & ~edge;
        long fullM = listed & isFull;
        long partM = listed & ~isFull;
        if (write) {
            for (int lane = 0; lane < 32; lane++) {
                for (int i = lane; i < nc; i += 32) {
                    long bit = 1L << i;
                    if ((fullM & bit) != 0) {
                        out[fullAt + Long.bitCount(fullM & (bit - 1))] = block.applyAsInt(i);
                    } else if ((partM & bit) != 0) {
                        out[partAt + Long.bitCount(partM & (bit - 1))] = block.applyAsInt(i);
                    }
                }
            }
        }
        int ng = 0;
        for (long e = edge; e != 0; e &= e - 1) {
            int blk = block.applyAsInt(Long.numberOfTrailingZeros(e));
            int k0 = blk * bc;
            int k1 = Math.min(nk, k0 + bc);
            int a = lowerBound(keys, at, at + n, k0) - at;
            int b = lowerBound(keys, at + a, at + n, k1) - at;
            for (int base = k0; base < k1; base += 32) {
                boolean[] g = new boolean[32];
                int m = 0;
                for (int lane = 0; lane < 32; lane++) {
                    int key = base + lane;
                    if (key < k1) {
                        int pos = lowerBound(keys, at + a, at + b, key) - at;
                        boolean selected = pos < b && keys[at + pos] == key;
                        if (key < sinks) {
                            g[lane] = true;
                        } else if (selected) {
                            g[lane] = causal && key > pLo;
                        } else {
                            g[lane] = key <= pHi && (long) key + window - 1 >= pLo;
                        }
                    }
                    m |= g[lane] ? 1 << lane : 0;
                }
                for (int lane = 0; lane < 32; lane++) {
                    if (write && g[lane]) {
                        out[gathAt + ng + Integer.bitCount(m & ((1 << lane) - 1))] = base + lane;
                    }
                }
                ng += Integer.bitCount(m);
            }
        }
        int nu = 0;
        for (int base = 0; base < n; base += 32) {
            boolean[] u = new boolean[32];
            int[] key = new int[32];
            int m = 0;
            for (int lane = 0; lane < 32; lane++) {
                int r = base + lane;
                if (r < n) {
                    key[lane] = keys[at + r];
                    int i = cand(key[lane] / bc, nSink, second, bHi);
                    boolean inVisited = i >= 0 && (vis >> i & 1) != 0;
                    u[lane] = !inVisited || ((edge >> i & 1) != 0 && !(causal && key[lane] > pLo));
                }
                m |= u[lane] ? 1 << lane : 0;
            }
            for (int lane = 0; lane < 32; lane++) {
                if (write && u[lane]) {
                    out[uncAt + nu + Integer.bitCount(m & ((1 << lane) - 1))] = key[lane];
                }
            }
            nu += Integer.bitCount(m);
        }
        return new int[] {Long.bitCount(fullM), Long.bitCount(partM), ng, nu};
    }

    /** {@code tkLowerBound}: the first index of ascending {@code keys[lo, hi)} holding a key ≥ v ({@code hi} if none). */
    private static int lowerBound(int[] keys, int lo, int hi, int v) {
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] < v) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    @Test
    void scratchSizingBoundsTheChunksAndCoversEveryTileOnce() {
        // bf16 B1 H32 D128 N 32768, 128-row tiles: 16 groups of 16 tiles per slice, 2 MiB each, all 512 in 1 GiB
        assertEquals(16, CudaTopKEstimatedPlan.units(256));
        assertEquals(512, CudaTopKEstimatedPlan.chunkUnits(32, 256, 32768, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES));
        assertEquals(1L << 30, CudaTopKEstimatedPlan.scratchBytes(512, 32768));
        // small problems: all groups at once; a budget below one group still scores one group per chunk
        assertEquals(2 * 3, CudaTopKEstimatedPlan.chunkUnits(2, 37, 5, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES));
        assertEquals(6L * 16 * 5 * 4, CudaTopKEstimatedPlan.scratchBytes(6, 5));
        assertEquals(1, CudaTopKEstimatedPlan.chunkUnits(3, 100, 1000, 10));
        assertEquals(Integer.MAX_VALUE / 16, CudaTopKEstimatedPlan.chunkUnits(65535, 1 << 20, 1, Long.MAX_VALUE),
                "the ranking's grid within 2^31 - 1 CTAs");
        for (int[] c : new int[][] {{1, 1, 1, 64}, {3, 17, 40, 64}, {8, 1100, 1000, 64}, {5, 160, 7, 128},
                {2, 3000, 2000, 128}, {4, 2100, 3000, 64}}) {
            int slices = c[0];
            int nq = c[1];
            int nk = c[2];
            int g = c[3];
            for (boolean causal : new boolean[] {true, false}) {
                PlanContext ctx = PlanContext.of(AttentionShape.of(1, slices, nq, nk, 64), Options.defaults()
                        .withCausal(causal).withGeometry(new TileGeometry(g, g))
                        .withQueryOffset(causal && nq <= nk ? nk - nq : null));
                int tiles = (nq + g - 1) / g;
                int units = CudaTopKEstimatedPlan.units(tiles);
                for (long budget : new long[] {1, 4L * 16 * nk * 3, CudaTopKQueryEstimatedPlan.SCRATCH_BYTES}) {
                    long chunk = CudaTopKEstimatedPlan.chunkUnits(slices, tiles, nk, budget);
                    long scratchInts = CudaTopKEstimatedPlan.scratchBytes(chunk, nk) / 4;
                    assertTrue(4 * scratchInts <= Math.max(budget, 4L * 16 * nk), "within the budget or one group");
                    long total = (long) slices * units;
                    int[] seen = new int[slices * tiles];
                    for (long g0 = 0; g0 < total; g0 += chunk) {
                        int m = (int) Math.min(chunk, total - g0);
                        int rankKeys = CudaTopKEstimatedPlan.rankKeys(ctx, units, g0, m);
                        assertTrue(rankKeys <= nk);
                        // sparsa_tk_rank's decoding of its block index
                        for (int bx = 0; bx < m * 16; bx++) {
                            long item = g0 + bx / 16;
                            int slice = (int) (item / units);
                            int t = (int) (item % units) * 16 + bx % 16;
                            if (t < tiles) {
                                seen[slice * tiles + t]++;
                                assertTrue(tileVisible(ctx, t) <= rankKeys, "the tile's keys fit the rank's shared memory");
                                assertTrue((long) (bx + 1) * nk <= scratchInts, "the tile's scratch row lies within it");
                            }
                        }
                    }
                    for (int i = 0; i < seen.length; i++) {
                        assertEquals(1, seen[i], "slice tile " + i);
                    }
                }
            }
        }
    }

    @Test
    void theScoresAndRankKernelsSelectWhatTheCpuSelects() {
        int cases = 0;
        long selected = 0;
        for (int i = 0; i < 16; i++) {
            SplittableRandom r = new SplittableRandom(9000 + i);
            boolean causal = i % 2 == 0;
            int g = (i / 2) % 2 == 0 ? 64 : 128;
            int nk = r.nextInt(1, 1500);
            int nq = i % 3 == 0 ? nk : r.nextInt(1, 2200);
            int dim = i % 4 == 3 ? 24 : 16;
            int kvHeads = i % 5 == 0 ? 1 : 3;
            Integer offset = causal && nq <= nk && i % 3 != 0 ? nk - nq : null;
            AttentionShape s = new AttentionShape(1, 3, kvHeads, nq, nk, dim, dim);
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal).withQueryOffset(offset)
                    .withGeometry(new TileGeometry(g, g)));
            int k = r.nextInt(4) == 0 ? nk + 3 : r.nextInt(1, Math.max(2, nk / 2));
            TopKPerQueryBlock p = pooled(k, r.nextInt(3) == 0 ? 0 : r.nextInt(1, 100), r.nextInt(g, 3 * g));
            if (CudaTopKEstimatedPlan.refusal(p, ctx) != null) {
                continue;
            }
            Problems.Qkv x = Problems.qkv(i, s, DType.F32, Layout.BHSD);
            if (i % 3 == 1) {
                coarse(x.k(), r);
            }
            float[][] q = new float[3][];
            float[][] kr = new float[kvHeads][];
            for (int h = 0; h < 3; h++) {
                q[h] = rows(x.q(), h);
            }
            for (int h = 0; h < kvHeads; h++) {
                kr[h] = rows(x.k(), h);
            }
            int tiles = (nq + g - 1) / g;
            // a budget of a few groups: several chunks
            long chunk = CudaTopKEstimatedPlan.chunkUnits(3, tiles, nk, 4L * 16 * nk * 2);
            int[][][] got = tiledSelection(ctx, p, q, kr, 3 / kvHeads, chunk);
            for (int h = 0; h < 3; h++) {
                int[][] want = p.select(ctx, q[h], kr[h / (3 / kvHeads)]);
                assertEquals(tiles, want.length);
                for (int t = 0; t < tiles; t++) {
                    assertArrayEquals(want[t], got[h][t], "case " + i + " " + ctx + " " + p.forced() + " k " + k
                            + " head " + h + " tile " + t);
                    selected += want[t].length;
                }
            }
            cases++;
        }
        assertTrue(cases >= 14, cases + " cases taken");
        assertTrue(selected > 1000, selected + " keys selected");
    }

    /** The keys query tile t may see: those of its last row (Plans.lastVisibleKey). */
    private static int tileVisible(PlanContext ctx, int t) {
        int rows = ctx.geometry().tileRows();
        return EstimateCases.visible(ctx, (int) Math.min(ctx.queryLength(), (long) (t + 1) * rows) - 1);
    }

    @Test
    void keySplitsCoverEveryKeyOnceInWholeTiles() {
        for (int nk : new int[] {1, 127, 128, 129, 511, 512, 513, 1500, 4095, 4096, 4097, 32768, 53248}) {
            int splits = CudaTopKEstimatedPlan.keySplits(nk);
            int span = CudaTopKEstimatedPlan.keySpan(nk, splits);
            assertTrue(splits >= 1 && splits <= 8, "splits " + splits + " for nk " + nk);
            assertEquals(0, span % 128, "whole key tiles");
            int[] seen = new int[nk];
            for (int by = 0; by < splits; by++) {
                for (int key = by * span; key < Math.min(nk, by * span + span); key++) {
                    seen[key]++;
                }
            }
            for (int key = 0; key < nk; key++) {
                assertEquals(1, seen[key], "key " + key + " of " + nk);
            }
        }
        assertEquals(8, CudaTopKEstimatedPlan.keySplits(32768));
        assertEquals(4096, CudaTopKEstimatedPlan.keySpan(32768, 8));
    }

    /**
     * sparsa_tk_mean (each tile's mean: 0 plus its rows in ascending order, then one division),
     * sparsa_tk_scores (groups of 16 tile means, key tiles of 128 zero-padded, one f32 fma chain per
     * (mean, key) over ascending channels, order keys into the chunk's scratch rows for the keys each
     * tile may see) and sparsa_tk_rank (the forced keys of every row of the tile set aside, then the
     * k smallest (order key, key) pairs, ascending), transcribed for one batch, chunk by chunk.
     */
    private static int[][][] tiledSelection(PlanContext ctx, TopKPerQueryBlock p, float[][] q, float[][] kr, int group,
                                            long chunk) {
        int slices = q.length;
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int dim = ctx.shape().headDim();
        int rows = ctx.geometry().tileRows();
        int tiles = (nq + rows - 1) / rows;
        int units = CudaTopKEstimatedPlan.units(tiles);
        long total = (long) slices * units;
        int k = Math.min(p.k(), nk);
        float[][] means = new float[slices][tiles * dim];
        for (int s = 0; s < slices; s++) {
            for (int t = 0; t < tiles; t++) {
                int r0 = t * rows;
                int r1 = Math.min(nq, r0 + rows);
                for (int c = 0; c < dim; c++) {
                    float acc = 0f;
                    for (int row = r0; row < r1; row++) {
                        acc += q[s][row * dim + c];
                    }
                    means[s][t * dim + c] = acc / (float) (r1 - r0);
                }
            }
        }
        int[][][] out = new int[slices][tiles][];
        for (long g0 = 0; g0 < total; g0 += chunk) {
            int m = (int) Math.min(chunk, total - g0);
            int[] scratch = new int[(int) (CudaTopKEstimatedPlan.scratchBytes(chunk, nk) / 4)];
            Arrays.fill(scratch, 0x5A5A5A5A); // rows not written stay garbage
            for (int bx = 0; bx < m; bx++) {
                long item = g0 + bx;
                int slice = (int) (item / units);
                int t0 = (int) (item % units) * 16;
                int cnt = Math.min(16, tiles - t0);
                int nMax = tileVisible(ctx, t0 + cnt - 1);
                int splits = CudaTopKEstimatedPlan.keySplits(nk);
                int span = CudaTopKEstimatedPlan.keySpan(nk, splits);
                for (int by = 0; by < splits; by++) {  // the CTAs of the grid's second dimension
                    for (int key0 = by * span; key0 < Math.min(nMax, by * span + span); key0 += 128) {
                        for (int col = 0; col < 128; col++) {
                            int key = key0 + col;
                            for (int rr = 0; rr < 16; rr++) {
                                float acc = 0f;
                                for (int c = 0; c < dim; c++) {
                                    float qv = rr < cnt ? means[slice][(t0 + rr) * dim + c] : 0f;
                                    float kv = key < nMax ? kr[slice / group][key * dim + c] : 0f;
                                    acc = Math.fma(qv, kv, acc);
                                }
                                if (rr < cnt && key < tileVisible(ctx, t0 + rr)) {
                                    scratch[(bx * 16 + rr) * nk + key] = EstimateCases.order(acc);
                                }
                            }
                        }
                    }
                }
            }
            for (int bx = 0; bx < m * 16; bx++) {
                long item = g0 + bx / 16;
                int slice = (int) (item / units);
                int t = (int) (item % units) * 16 + bx % 16;
                if (t >= tiles) {
                    continue;
                }
                int n = tileVisible(ctx, t);
                long pLo = (long) t * rows + ctx.queryOffset();
                long pHi = Math.min(nq, (long) (t + 1) * rows) - 1 + ctx.queryOffset();
                long fLo = Math.max(0, pHi - p.forced().window() + 1);
                long fHi = Math.min(n - 1L, pLo);
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
                Arrays.sort(sel);
                out[slice][t] = sel;
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

    private static float[] rows(Tensor t, int h) {
        float[] out = new float[t.seqLen() * t.dim()];
        for (int i = 0; i < t.seqLen(); i++) {
            t.readRow(0, h, i, out, i * t.dim());
        }
        return out;
    }

    /** {@code sparsa_tk_emit}: every tile's {@code tkTileLists}, concatenated with prefix offsets. */
    private static int[][] emit(int[][] sel, PlanContext ctx, ForcedKeys f) {
        int tiles = sel.length;
        int[][] offsets = new int[4][tiles + 1];
        int[][] data = new int[4][];
        int[][][] per = new int[tiles][][];
        for (int t = 0; t < tiles; t++) {
            per[t] = tileLists(sel[t], t, ctx, f);
            for (int j = 0; j < 4; j++) {
                offsets[j][t + 1] = offsets[j][t] + per[t][j].length;
            }
        }
        for (int j = 0; j < 4; j++) {
            data[j] = new int[offsets[j][tiles]];
            for (int t = 0; t < tiles; t++) {
                System.arraycopy(per[t][j], 0, data[j], offsets[j][t], per[t][j].length);
            }
        }
        return new int[][] {offsets[0], data[0], offsets[1], data[1], offsets[2], data[2], offsets[3], data[3]};
    }

    /** {@code tkTileLists} of sparsa_topk_estimate.cuh, line for line: {full, partial, gathered, unconditional}. */
    private static int[][] tileLists(int[] keys, int t, PlanContext ctx, ForcedKeys f) {
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int n = keys.length;
        int window = f.window();
        int sinks = f.sinks();
        boolean causal = ctx.causal();
        ElementPredicate p = CudaTopKEstimatedPlan.layoutPredicate(ctx, f);
        long r0 = (long) t * rows;
        long cnt = Math.min(rows, nq - r0);
        long pLo = r0 + ctx.queryOffset();
        long pHi = pLo + cnt - 1;
        long lo = Math.max(0, pLo - window + 1);
        long hi = Math.min(nk - 1L, pHi);
        int bLo = hi < lo ? 1 : (int) (lo / bc);
        int bHi = hi < lo ? 0 : (int) (hi / bc);
        int sinkBlocks = sinks == 0 || nk == 0 ? 0 : (Math.min(sinks, nk) - 1) / bc + 1;
        int second = Math.max(sinkBlocks, bLo);
        int nSink = sinkBlocks;
        int nBand = bHi >= second ? bHi - second + 1 : 0;
        long vis = 0;
        long edge = 0;
        long isFull = 0;
        for (int i = 0; i < nSink + nBand; i++) {
            int blk = i < nSink ? i : second + (i - nSink);
            long k0 = (long) blk * bc;
            long k1 = Math.min(nk, k0 + bc) - 1;
            int c = classify(pLo, pHi, k0, k1, p.causal(), p.bandLo(), p.bandHi(), p.sinks());
            if (c != 0) {
                vis |= 1L << i;
            }
            if (c == 2) {
                isFull |= 1L << i;
            }
        }
        for (int key : keys) {
            int i = cand(key / bc, nSink, second, bHi);
            if (i >= 0 && (vis >> i & 1) != 0 && key >= sinks && (key <= pHi - window || (!causal && key > pLo))) {
                edge |= 1L << i;
            }
        }
        IntsOut full = new IntsOut();
        IntsOut part = new IntsOut();
        IntsOut gath = new IntsOut();
        IntsOut unc = new IntsOut();
        for (int i = 0; i < nSink + nBand; i++) {
            if ((vis >> i & 1) != 0 && (edge >> i & 1) == 0) {
                int blk = i < nSink ? i : second + (i - nSink);
                ((isFull >> i & 1) != 0 ? full : part).add(blk);
            }
        }
        int sel = 0;
        for (int i = 0; i < nSink + nBand; i++) {
            if ((edge >> i & 1) == 0) {
                continue;
            }
            int blk = i < nSink ? i : second + (i - nSink);
            int k0 = blk * bc;
            int k1 = Math.min(nk, k0 + bc);
            while (sel < n && keys[sel] < k0) {
                sel++;
            }
            for (int key = k0; key < k1; key++) {
                boolean selected = sel < n && keys[sel] == key;
                if (selected) {
                    sel++;
                }
                boolean g;
                if (key < sinks) {
                    g = true;
                } else if (selected) {
                    g = causal && key > pLo;
                } else {
                    g = key <= pHi && (long) key + window - 1 >= pLo;
                }
                if (g) {
                    gath.add(key);
                }
            }
        }
        for (int key : keys) {
            int i = cand(key / bc, nSink, second, bHi);
            boolean inVisited = i >= 0 && (vis >> i & 1) != 0;
            if (!inVisited || ((edge >> i & 1) != 0 && !(causal && key > pLo))) {
                unc.add(key);
            }
        }
        return new int[][] {full.array(), part.array(), gath.array(), unc.array()};
    }

    private static int cand(int blk, int nSink, int second, int bHi) {
        if (blk < nSink) {
            return blk;
        }
        return blk >= second && blk <= bHi ? nSink + blk - second : -1;
    }

    /** {@code tkClassify}: 0 empty, 1 partial, 2 full. */
    private static int classify(long qLo, long qHi, long kLo, long kHi, boolean causal, int bandLo, int bandHi, int sinks) {
        long dMin = qLo - kHi;
        long dMax = qHi - kLo;
        int causalClass = !causal ? 2 : dMin >= 0 ? 2 : dMax < 0 ? 0 : 1;
        if (causalClass == 0) {
            return 0;
        }
        int rest = dMax < bandLo || dMin > bandHi ? 0 : dMin >= bandLo && dMax <= bandHi ? 2 : 1;
        if (sinks > 0) {
            int s = kHi < sinks ? 2 : kLo >= sinks ? 0 : 1;
            rest = Math.max(rest, s);
        }
        return Math.min(causalClass, rest);
    }

    private static final class IntsOut {
        private int[] a = new int[8];
        private int n;

        void add(int v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, 2 * n);
            }
            a[n++] = v;
        }

        int[] array() {
            return Arrays.copyOf(a, n);
        }
    }
}
