package dev.sparsa.patterns.selection;

import dev.sparsa.patterns.blocksparse.BlockLists;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;

/**
 * Compiles one list of key blocks per query row (MoBA's gate, NSA's selected blocks: blocks of
 * {@code blockSize} keys, independent of the kernel's tiling) into a {@link HeadLayout} with
 * exactly that token set: row {@code r} admits every key of its listed blocks that it may see under
 * the context's causality.
 *
 * <p>The layout is organised by key block, as MoBA's efficient implementation runs it: for each
 * block, the rows that see it whole are listed into tiles of up to {@code tileRows} rows (in
 * ascending row order), so a tile is filled by queries that share a block rather than by one query;
 * the rows whose own position falls inside a block they listed (the causal diagonal) get tiles of
 * their own under the causal predicate. A row therefore appears in one tile per listed block; the
 * kernels merge its partial results exactly through the LSE. Blocks entirely after a row are
 * dropped. A row with no block is in no tile (0 and LSE −∞). O(rows × listed blocks + tiles ×
 * blockSize / blockCols).
 */
public final class RowBlockLayout {
    private RowBlockLayout() {
    }

    /** The sorted, distinct key blocks (of {@code blockSize} keys) of one row. */
    @FunctionalInterface
    public interface RowBlocks {
        int[] blocks(int row);
    }

    /** Compiles the rows' block lists. @throws IllegalArgumentException if {@code blockSize < 1} */
    public static HeadLayout compile(PlanContext ctx, int blockSize, RowBlocks rows) {
        if (blockSize < 1) {
            throw new IllegalArgumentException("blockSize: must be >= 1, got " + blockSize);
        }
        int nq = ctx.queryLength();
        int[][] lists = new int[nq][];
        int[] start = new int[nq + 1];
        for (int r = 0; r < nq; r++) {
            lists[r] = rows.blocks(r);
            start[r + 1] = start[r] + lists[r].length;
        }
        int[] blocks = new int[start[nq]];
        for (int r = 0; r < nq; r++) {
            System.arraycopy(lists[r], 0, blocks, start[r], lists[r].length);
        }
        return compile(ctx, blockSize, blocks, start);
    }

    /**
     * Compiles the rows' block lists given in one array: row {@code r}'s sorted, distinct blocks
     * are {@code blocks[start[r], start[r + 1])} ({@code start} has {@code queryLength + 1} entries).
     *
     * @throws IllegalArgumentException if {@code blockSize < 1}
     */
    public static HeadLayout compile(PlanContext ctx, int blockSize, int[] blocks, int[] start) {
        if (blockSize < 1) {
            throw new IllegalArgumentException("blockSize: must be >= 1, got " + blockSize);
        }
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int nb = (int) (((long) nk + blockSize - 1) / blockSize);
        // counting sort of (block, row) pairs, whole and diagonal apart, rows ascending within a block.
        // Row r sees the keys up to last: its blocks below wholeBelow[r] whole, those below
        // seenBelow[r] (and not whole) in part, the others not at all
        // Row r's sorted blocks: those in [start[r], wholeEnd[r]) are seen whole, those in
        // [wholeEnd[r], seenEnd[r]) in part (found from the end: a row lists few blocks past its own)
        int[] wholeEnd = new int[nq];
        int[] seenEnd = new int[nq];
        int[] wholeCount = new int[nb + 1];
        int[] diagCount = new int[nb + 1];
        for (int r = 0; r < nq; r++) {
            long last = Plans.lastVisibleKey(ctx, r);
            int sb = last < 0 ? 0 : (int) Math.min(nb, last / blockSize + 1);
            int wb = last >= nk - 1 ? nb : (int) Math.max(0, Math.min(nb, (last + 1) / blockSize));
            int s0 = start[r];
            int se = start[r + 1];
            while (se > s0 && blocks[se - 1] >= sb) {
                se--;
            }
            int we = se;
            while (we > s0 && blocks[we - 1] >= wb) {
                we--;
            }
            wholeEnd[r] = we;
            seenEnd[r] = se;
            for (int i = s0; i < we; i++) {
                wholeCount[blocks[i] + 1]++;
            }
            for (int i = we; i < se; i++) {
                diagCount[blocks[i] + 1]++;
            }
        }
        for (int i = 0; i < nb; i++) {
            wholeCount[i + 1] += wholeCount[i];
            diagCount[i + 1] += diagCount[i];
        }
        int[] whole = new int[wholeCount[nb]];
        int[] diag = new int[diagCount[nb]];
        int[] wFill = wholeCount.clone();
        int[] dFill = diagCount.clone();
        for (int r = 0; r < nq; r++) {
            int we = wholeEnd[r];
            for (int i = start[r]; i < we; i++) {
                whole[wFill[blocks[i]]++] = r;
            }
            for (int i = we; i < seenEnd[r]; i++) {
                diag[dFill[blocks[i]]++] = r;
            }
        }
        int tileRows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        // the builder's lists sized once: the tiles, their listed rows (exactly, so that the row list
        // goes into the layout without a copy) and their column blocks
        long tiles = 0;
        long listedRows = 0;
        for (int blk = 0; blk < nb; blk++) {
            tiles += (diagCount[blk + 1] - diagCount[blk] + tileRows - 1) / tileRows
                    + (wholeCount[blk + 1] - wholeCount[blk] + tileRows - 1) / tileRows;
            listedRows += listedRows(diag, diagCount[blk], diagCount[blk + 1], tileRows)
                    + listedRows(whole, wholeCount[blk], wholeCount[blk + 1], tileRows);
        }
        long blocksPerTile = ((long) blockSize + cols - 1) / cols + 1;
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate())
                .reserve((int) Math.min(tiles, 1 << 24), 0, 0)
                .reserveRowsAndBlocks((int) listedRows, (int) Math.min(tiles * blocksPerTile, 1 << 26));
        for (int blk = 0; blk < nb; blk++) {
            long k0 = (long) blk * blockSize;
            long k1 = Math.min(nk, k0 + blockSize); // exclusive
            emitTiles(b, diag, diagCount[blk], diagCount[blk + 1], tileRows, k0, k1, cols, nk);
            emitTiles(b, whole, wholeCount[blk], wholeCount[blk + 1], tileRows, k0, k1, cols, nk);
        }
        return b.build();
    }

    /** The rows of the listed (not contiguous) tiles that {@link #emitTiles} makes of {@code rows[from, to)}. */
    private static int listedRows(int[] rows, int from, int to, int tileRows) {
        int listed = 0;
        for (int i = from; i < to; i += tileRows) {
            int n = Math.min(tileRows, to - i);
            listed += rows[i + n - 1] - rows[i] == n - 1 ? 0 : n;
        }
        return listed;
    }

    /** Tiles of up to {@code tileRows} of the ascending rows {@code rows[from, to)}, each visiting keys {@code [k0, k1)}. */
    private static void emitTiles(HeadLayoutBuilder b, int[] rows, int from, int to, int tileRows, long k0, long k1,
                                  int cols, int nk) {
        for (int i = from; i < to; i += tileRows) {
            int n = Math.min(tileRows, to - i);
            HeadLayoutBuilder.Tile t = rows[i + n - 1] - rows[i] == n - 1
                    ? b.tile(rows[i], n)
                    : b.listedTile(rows, i, i + n);
            BlockLists.emitRange(t, k0, k1, cols, nk);
            t.end();
        }
    }
}
