package dev.sparsa.patterns.topk;

import dev.sparsa.plan.BlockClass;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;

/**
 * Builds, without the token-set encoder, the layout of "each query tile shares one selected key set,
 * unioned with {@link ForcedKeys}": row {@code r} of tile {@code t} admits its forced keys plus every
 * key of {@code sel[t]} it may see (under the context's causality). The layout's element predicate
 * is the forced set itself ({@code base ∧ (band [0, window−1] ∪ sinks)}): the blocks the band and the
 * sinks touch are visited by predicate, selected keys outside them are unconditional (every row of
 * the tile sees them), and a block where some selected key is needed beyond the band (the band's
 * lower edge) is written key by key (selected keys unconditional, the others gathered under the
 * predicate). Same token set as the encoder, O(tiles · (k + band blocks · blockCols)).
 *
 * <p>Returns {@code null} (the caller then uses the encoder) when the window is 0 (no band to
 * express) or a selected key would need a row set that is neither every row of the tile nor what the
 * predicate admits (windows shorter than a tile).
 */
final class SharedKeySetLayout {
    private SharedKeySetLayout() {
    }

    static HeadLayout build(PlanContext ctx, ForcedKeys forced, int[][] sel) {
        int w = forced.window();
        int s = forced.sinks();
        if (w <= 0) {
            return null;
        }
        ElementPredicate f = ctx.basePredicate().withBand(0, w - 1).withSinks(s);
        long selectedKeys = 0;
        for (int[] keys : sel) {
            selectedKeys += keys.length;
        }
        // the selected keys are mostly unconditional: one list of the right size instead of regrowing
        HeadLayoutBuilder b = HeadLayout.builder(ctx, f).reserve(sel.length, 0, (int) Math.min(selectedKeys, Integer.MAX_VALUE - 8));
        int rows = ctx.geometry().tileRows();
        int bc = ctx.geometry().blockCols();
        int nk = ctx.keyLength();
        int nq = ctx.queryLength();
        int blocks = ctx.keyBlocks();
        boolean causal = ctx.causal();
        int sinkBlocks = s == 0 || nk == 0 ? 0 : (Math.min(s, nk) - 1) / bc + 1;
        boolean[] edge = new boolean[Math.max(1, blocks)];
        boolean[] vis = new boolean[Math.max(1, blocks)];
        for (int t = 0, r0 = 0; r0 < nq; t++, r0 += rows) {
            int cnt = Math.min(rows, nq - r0);
            long pLo = (long) r0 + ctx.queryOffset();
            long pHi = pLo + cnt - 1;
            int[] keys = sel[t];
            // the band's blocks: keys [pLo − w + 1, pHi] cut to [0, nk)
            long lo = Math.max(0, pLo - w + 1);
            long hi = Math.min(nk - 1L, pHi);
            int bLo = hi < lo ? 1 : (int) (lo / bc);
            int bHi = hi < lo ? 0 : (int) (hi / bc);
            // which blocks the predicate visits for this tile (sink blocks and the band's), once per tile
            int second = Math.max(sinkBlocks, bLo);
            for (int blk = 0; blk < sinkBlocks; blk++) {
                vis[blk] = visited(f, blk, sinkBlocks, bLo, bHi, pLo, pHi, bc, nk);
            }
            for (int blk = second; blk <= bHi; blk++) {
                vis[blk] = visited(f, blk, sinkBlocks, bLo, bHi, pLo, pHi, bc, nk);
            }
            // blocks where a selected key is needed by rows the predicate does not admit; only the
            // keys inside the sink blocks and the band's blocks can lie in a visited block
            int sinkEnd = lowerBound(keys, 0, (long) sinkBlocks * bc);
            int bandFrom = lowerBound(keys, sinkEnd, (long) second * bc);
            int bandEnd = lowerBound(keys, bandFrom, (long) (bHi + 1) * bc);
            int edges = 0;
            for (int[] range : new int[][] {{0, sinkEnd}, {bandFrom, bandEnd}}) {
                for (int i = range[0]; i < range[1]; i++) {
                    int key = keys[i];
                    int blk = key / bc;
                    if (key >= s && vis[blk]
                            && (key <= pHi - w || (!causal && key > pLo))) {
                        if (!edge[blk]) {
                            edge[blk] = true;
                            edges++;
                        }
                    }
                }
            }
            HeadLayoutBuilder.Tile tile = b.tile(r0, cnt);
            int sel0 = 0;
            int out = 0; // next selected key to consider as one outside the visited blocks
            // blocks ascending, and the outside keys between them, so the tile's keys arrive sorted
            for (int blk = sinkBlocks > 0 ? 0 : second; blk < sinkBlocks || (blk >= second && blk <= bHi); blk = blk + 1 < sinkBlocks ? blk + 1 : Math.max(blk + 1, second)) {
                out = outsideKeys(tile, keys, out, blk, vis, bc, causal, pLo);
                if (out < 0) {
                    return null;
                }
                int k0 = blk * bc;
                int k1 = Math.min(nk, k0 + bc);
                if (f.classify(pLo, pHi, k0, k1 - 1, nk) == BlockClass.EMPTY) {
                    continue;
                }
                if (!edge[blk]) {
                    tile.blockByPredicate(blk);
                    continue;
                }
                while (sel0 < keys.length && keys[sel0] < k0) {
                    sel0++;
                }
                for (int key = k0; key < k1; key++) {
                    boolean selected = sel0 < keys.length && keys[sel0] == key;
                    if (selected) {
                        sel0++;
                    }
                    if (key < s) {
                        tile.gather(key); // sinks: every row that may see it, which is what the predicate says
                    } else if (selected) {
                        if (!causal || key <= pLo) {
                            tile.unconditional(key, 0f); // every row of the tile sees it
                        } else if (key + w - 1 >= pHi) {
                            tile.gather(key); // rows p >= key, all inside the band
                        } else {
                            return null;
                        }
                    } else if (key <= pHi && key + w - 1 >= pLo) {
                        tile.gather(key); // the window's rows only
                    }
                }
            }
            if (outsideKeys(tile, keys, out, Integer.MAX_VALUE, vis, bc, causal, pLo) < 0) {
                return null;
            }
            for (int blk = 0; blk < sinkBlocks; blk++) {
                vis[blk] = false;
            }
            for (int blk = second; blk <= bHi; blk++) {
                vis[blk] = false;
            }
            if (edges > 0) {
                java.util.Arrays.fill(edge, 0, sinkBlocks, false);
                if (second <= bHi) {
                    java.util.Arrays.fill(edge, second, bHi + 1, false);
                }
            }
            tile.end();
        }
        return b.build();
    }

    /**
     * Emits, from {@code keys[from..]}, the selected keys in blocks below {@code blk} that lie outside
     * the visited blocks (every row of the tile must see them: unconditional), in runs. Returns the
     * index of the first key at or above {@code blk}, or -1 when such a key is not visible to every row.
     */
    private static int outsideKeys(HeadLayoutBuilder.Tile tile, int[] keys, int from, int blk, boolean[] vis, int bc,
                                   boolean causal, long pLo) {
        long limit = (long) blk * bc;
        int i = from;
        int run = from; // start of the current run of outside keys
        while (i < keys.length && keys[i] < limit) {
            // the keys of one block: one division per block, not per key
            int b = keys[i] / bc;
            long end = Math.min(limit, (long) (b + 1) * bc);
            int j = i + 1;
            while (j < keys.length && keys[j] < end) {
                j++;
            }
            if (vis[b]) {
                if (!emit(tile, keys, run, i, causal, pLo)) {
                    return -1;
                }
                run = j;
            }
            i = j;
        }
        return emit(tile, keys, run, i, causal, pLo) ? i : -1;
    }

    /** Emits {@code keys[from, to)} as unconditional; false when the last (largest) is not visible to every row. */
    private static boolean emit(HeadLayoutBuilder.Tile tile, int[] keys, int from, int to, boolean causal, long pLo) {
        if (to > from) {
            if (causal && keys[to - 1] > pLo) {
                return false;
            }
            tile.unconditionalAll(keys, from, to);
        }
        return true;
    }

    /** The first index in {@code keys[from..]} (ascending) whose key is {@code >= bound}. */
    private static int lowerBound(int[] keys, int from, long bound) {
        int lo = from;
        int hi = keys.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (keys[mid] < bound) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    private static boolean visited(ElementPredicate f, int blk, int sinkBlocks, int bLo, int bHi, long pLo, long pHi,
                                   int bc, int nk) {
        if (blk >= sinkBlocks && (blk < bLo || blk > bHi)) {
            return false;
        }
        int k0 = blk * bc;
        return f.classify(pLo, pHi, k0, Math.min(nk, k0 + bc) - 1, nk) != BlockClass.EMPTY;
    }
}
