package dev.sparsa.patterns.blocksparse;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import java.util.Arrays;

/**
 * An explicit block-sparse layout per head, in block sizes of the user's choice ({@code queryBlock}
 * rows by {@code keyBlock} keys, independent of the kernel tile): query block {@code i} of head
 * {@code h} attends every token of the key blocks listed for it, under the context's causality.
 * Built from boolean block masks or from index lists; one table for all heads or one per head.
 *
 * <p>Throws {@link IllegalArgumentException} if a block size is &lt; 1, a table is empty or ragged, an index is
 *     negative, or (at plan time) the table's block counts or head count do not fit the context
 */
public final class BlockSparse implements Pattern {
    private final int queryBlock;
    private final int keyBlock;
    private final int[][][] lists; // [head or 0][query block] -> sorted distinct key blocks
    private final int keyBlocks;

    private BlockSparse(int queryBlock, int keyBlock, int[][][] lists, int keyBlocks) {
        this.queryBlock = Checks.atLeast("queryBlock", queryBlock, 1);
        this.keyBlock = Checks.atLeast("keyBlock", keyBlock, 1);
        this.lists = lists;
        this.keyBlocks = keyBlocks;
    }

    /** One boolean mask {@code [queryBlocks][keyBlocks]} for every head. */
    public static BlockSparse fromMask(boolean[][] mask, int queryBlock, int keyBlock) {
        return fromMasks(new boolean[][][] {mask}, queryBlock, keyBlock);
    }

    /** One boolean mask per query head {@code [heads][queryBlocks][keyBlocks]}. */
    public static BlockSparse fromMasks(boolean[][][] masks, int queryBlock, int keyBlock) {
        if (masks == null || masks.length == 0) {
            throw new IllegalArgumentException("masks: need at least one mask");
        }
        int kb = -1;
        int qb = -1;
        int[][][] lists = new int[masks.length][][];
        for (int h = 0; h < masks.length; h++) {
            if (masks[h] == null || masks[h].length == 0) {
                throw new IllegalArgumentException("masks[" + h + "]: empty");
            }
            if (qb >= 0 && masks[h].length != qb) {
                throw new IllegalArgumentException("masks[" + h + "]: has " + masks[h].length + " query blocks, head 0 has " + qb);
            }
            qb = masks[h].length;
            lists[h] = new int[qb][];
            for (int i = 0; i < qb; i++) {
                boolean[] row = masks[h][i];
                if (row == null || (kb >= 0 && row.length != kb)) {
                    throw new IllegalArgumentException("masks[" + h + "][" + i + "]: ragged mask, expected " + kb + " key blocks");
                }
                kb = row.length;
                int n = 0;
                int[] l = new int[row.length];
                for (int j = 0; j < row.length; j++) {
                    if (row[j]) {
                        l[n++] = j;
                    }
                }
                lists[h][i] = Arrays.copyOf(l, n);
            }
        }
        return new BlockSparse(queryBlock, keyBlock, lists, kb);
    }

    /**
     * Index lists {@code [heads][queryBlocks][]} of key blocks, for a key axis of {@code keyBlocks}
     * blocks (use one head for all heads).
     */
    public static BlockSparse fromLists(int[][][] lists, int keyBlocks, int queryBlock, int keyBlock) {
        if (lists == null || lists.length == 0) {
            throw new IllegalArgumentException("lists: need at least one head");
        }
        int[][][] copy = new int[lists.length][][];
        for (int h = 0; h < lists.length; h++) {
            if (lists[h] == null || lists[h].length == 0 || (h > 0 && lists[h].length != lists[0].length)) {
                throw new IllegalArgumentException("lists[" + h + "]: need " + (h == 0 ? "some" : lists[0].length)
                        + " query blocks, got " + (lists[h] == null ? "null" : lists[h].length));
            }
            copy[h] = new int[lists[h].length][];
            for (int i = 0; i < lists[h].length; i++) {
                int[] s = lists[h][i] == null ? new int[0] : lists[h][i].clone();
                Arrays.sort(s);
                for (int x : s) {
                    if (x < 0 || x >= keyBlocks) {
                        throw new IllegalArgumentException("lists[" + h + "][" + i + "]: key block " + x + " outside [0, "
                                + keyBlocks + ")");
                    }
                }
                copy[h][i] = Arrays.stream(s).distinct().toArray();
            }
        }
        return new BlockSparse(queryBlock, keyBlock, copy, keyBlocks);
    }

    @Override
    public String name() {
        return "blockSparse(" + queryBlock + "x" + keyBlock + (lists.length > 1 ? ", per head" : "") + ")";
    }

    @Override
    public SparsePlan plan(PlanContext ctx) {
        int qb = Checks.groups(ctx.queryLength(), queryBlock);
        int kb = Checks.groups(ctx.keyLength(), keyBlock);
        if (qb != lists[0].length || kb != keyBlocks) {
            throw new IllegalArgumentException("blocks: the table has " + lists[0].length + "x" + keyBlocks + " blocks of "
                    + queryBlock + "x" + keyBlock + " but the context needs " + qb + "x" + kb);
        }
        if (lists.length > 1 && lists.length != ctx.shape().qHeads()) {
            throw new IllegalArgumentException("heads: the table has " + lists.length + " heads but the context has "
                    + ctx.shape().qHeads() + " query heads");
        }
        return Plans.perHead(ctx, h -> lists.length == 1 ? 0 : h,
                h -> BlockLists.compile(ctx, queryBlock, keyBlock, i -> lists[lists.length == 1 ? 0 : h][i]), name());
    }

    @Override
    public String toString() {
        return name();
    }
}
