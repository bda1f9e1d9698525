package dev.sparsa.patterns.blocksparse;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;

/**
 * Compiles a block layout written in the user's block sizes ({@code queryBlock} rows by {@code
 * keyBlock} keys, independent of the kernel's tile) into a {@link HeadLayout} with the context's base
 * predicate: query block {@code i} attends every token of its listed key blocks, under causality.
 * Kernel tiles never straddle two user query blocks; a kernel key block wholly inside the selected
 * keys is visited as a block, the selected keys of a kernel block only partly selected are gathered.
 */
public final class BlockLists {
    private BlockLists() {
    }

    /** The sorted, distinct key blocks of user query block {@code i}. */
    @FunctionalInterface
    public interface Lists {
        int[] keyBlocks(int queryBlock);
    }

    /** Compiles; O(query blocks × selected keys / blockCols + gathered keys). */
    public static HeadLayout compile(PlanContext ctx, int queryBlock, int keyBlock, Lists lists) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int cols = ctx.geometry().blockCols();
        int tileRows = ctx.geometry().tileRows();
        int qBlocks = dev.sparsa.patterns.support.Checks.groups(nq, queryBlock);
        for (int qb = 0; qb < qBlocks; qb++) {
            int[] kbs = lists.keyBlocks(qb);
            int rEnd = dev.sparsa.patterns.support.Checks.groupEnd(qb, queryBlock, nq);
            for (int start = (int) ((long) qb * queryBlock); start < rEnd; start += tileRows) {
                int count = Math.min(tileRows, rEnd - start);
                HeadLayoutBuilder.Tile t = b.tile(start, count);
                emitKeys(t, kbs, keyBlock, cols, nk, dev.sparsa.patterns.support.Plans.lastVisibleKey(ctx, start + count - 1));
                t.end();
            }
        }
        return b.build();
    }

    /** Adds the keys of user key blocks {@code kbs} (sorted, distinct; cut at {@code lastKey}) to a tile. */
    static void emitKeys(HeadLayoutBuilder.Tile t, int[] kbs, int keyBlock, int cols, int nk, long lastKey) {
        int i = 0;
        while (i < kbs.length) {
            int j = i;
            while (j + 1 < kbs.length && kbs[j + 1] == kbs[j] + 1) {
                j++; // merge consecutive user blocks into one key range
            }
            long k0 = (long) kbs[i] * keyBlock;
            long k1 = Math.min(Math.min(nk, ((long) kbs[j] + 1) * keyBlock), lastKey + 1); // exclusive
            emitRange(t, k0, k1, cols, nk);
            i = j + 1;
        }
    }

    /**
     * Adds keys {@code [k0, k1)} to a tile: whole kernel blocks (of {@code cols} keys) as blocks
     * classified by the layout's predicate, the ragged ends as gathered keys.
     */
    public static void emitRange(HeadLayoutBuilder.Tile t, long k0, long k1, int cols, int nk) {
        long k = k0;
        while (k < k1) {
            int block = (int) (k / cols);
            long bStart = (long) block * cols;
            long bEnd = Math.min(nk, bStart + cols);
            if (k == bStart && bEnd <= k1) {
                t.blockByPredicate(block);
                k = bEnd;
            } else {
                long stop = Math.min(bEnd, k1);
                for (; k < stop; k++) {
                    t.gather((int) k);
                }
            }
        }
    }
}
