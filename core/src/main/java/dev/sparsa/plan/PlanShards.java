package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * Splits one {@link SparsePlan} into plans for several devices, so that one attention runs across
 * them: by query heads (each shard a contiguous range of whole KV groups, no merging needed), or by
 * key range (each shard the same rows over a contiguous, block-aligned range of keys; every
 * admitted pair lands in exactly one shard, and the shards' partial outputs merge exactly through
 * their LSEs, as ring and context-parallel attention do).
 *
 * <p>A key shard keeps the plan's absolute positions (its shape, offset and predicate are the
 * original's), so any pattern splits, sinks, strides and clamped neighbourhoods included; it reads
 * only the keys of its range, and a device may hold K and V whole or only that range's rows in a
 * full-length view. Tiles left with no key in a shard are dropped (their rows get 0 and −∞ there,
 * which the merge ignores).
 */
public final class PlanShards {
    private PlanShards() {
    }

    /**
     * The plan restricted to query heads {@code [fromHead, toHead)}: shape {@code [batch, toHead −
     * fromHead, (toHead − fromHead) / group, …]}, the same layouts.
     *
     * @throws IllegalArgumentException if the range is empty, leaves {@code [0, qHeads)} or does not
     *     consist of whole GQA groups
     */
    public static SparsePlan heads(SparsePlan plan, int fromHead, int toHead) {
        AttentionShape s = plan.shape();
        int group = s.groupSize();
        if (fromHead < 0 || toHead > s.qHeads() || fromHead >= toHead || fromHead % group != 0 || toHead % group != 0) {
            throw new IllegalArgumentException("heads: [" + fromHead + ", " + toHead + ") must be a non-empty range of whole "
                    + "groups of " + group + " query heads inside [0, " + s.qHeads() + ")");
        }
        int n = toHead - fromHead;
        AttentionShape shard = new AttentionShape(s.batch(), n, n / group, s.queryLength(), s.keyLength(), s.headDim(),
                s.valueDim());
        PlanContext c = plan.context();
        SparsePlan.Builder b = SparsePlan.builder(new PlanContext(shard, c.geometry(), c.causal(), c.queryOffset()))
                .describe(plan.description() + " heads [" + fromHead + ", " + toHead + ")");
        for (int batch = 0; batch < s.batch(); batch++) {
            for (int h = fromHead; h < toHead; h++) {
                b.slice(batch, h - fromHead, plan.layout(batch, h));
            }
        }
        return b.build();
    }

    /**
     * The plan restricted to keys {@code [fromKey, toKey)}, both multiples of the plan's key-block
     * width (or {@code toKey} the key length).
     *
     * @throws IllegalArgumentException if the range is empty, leaves {@code [0, keyLength]} or is not
     *     block-aligned
     */
    public static SparsePlan keys(SparsePlan plan, int fromKey, int toKey) {
        int nk = plan.shape().keyLength();
        int cols = plan.geometry().blockCols();
        if (fromKey < 0 || toKey > nk || fromKey >= toKey || fromKey % cols != 0 || (toKey % cols != 0 && toKey != nk)) {
            throw new IllegalArgumentException("keys: [" + fromKey + ", " + toKey + ") must be a non-empty range inside [0, "
                    + nk + "] whose ends are multiples of the block width " + cols + " (or the key length)");
        }
        Map<HeadLayout, HeadLayout> restricted = new IdentityHashMap<>();
        SparsePlan.Builder b = SparsePlan.builder(plan.context())
                .describe(plan.description() + " keys [" + fromKey + ", " + toKey + ")");
        for (int batch = 0; batch < plan.shape().batch(); batch++) {
            for (int h = 0; h < plan.shape().qHeads(); h++) {
                HeadLayout l = plan.layout(batch, h);
                b.slice(batch, h, restricted.computeIfAbsent(l, x -> restrict(plan.context(), x, fromKey, toKey)));
            }
        }
        return b.build();
    }

    /**
     * {@code n} key shards covering all keys, cut at block boundaries so that each holds about the
     * same number of visited pairs (a causal plan's later blocks are seen by more rows, so its cuts
     * are not evenly spaced). Fewer than {@code n} shards come back when there are fewer key blocks.
     *
     * @throws IllegalArgumentException if {@code n < 1} or the plan has no keys
     */
    public static List<SparsePlan> balancedKeys(SparsePlan plan, int n) {
        int[] cuts = balancedKeyCuts(plan, n);
        List<SparsePlan> shards = new ArrayList<>();
        for (int i = 0; i + 1 < cuts.length; i++) {
            shards.add(keys(plan, cuts[i], cuts[i + 1]));
        }
        return shards;
    }

    /**
     * The key positions {@code 0 = c0 < c1 < … < cm = keyLength} that {@link #balancedKeys} cuts at.
     *
     * @throws IllegalArgumentException if {@code n < 1} or the plan has no keys
     */
    public static int[] balancedKeyCuts(SparsePlan plan, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("n: need at least one shard, got " + n);
        }
        int nk = plan.shape().keyLength();
        if (nk == 0) {
            throw new IllegalArgumentException("plan: has no keys to split");
        }
        int cols = plan.geometry().blockCols();
        int blocks = plan.geometry().blocksFor(nk);
        long[] cost = new long[blocks];
        for (int batch = 0; batch < plan.shape().batch(); batch++) {
            for (int h = 0; h < plan.shape().qHeads(); h++) {
                addBlockCosts(plan.layout(batch, h), cost);
            }
        }
        long total = 0;
        for (long c : cost) {
            total += c;
        }
        List<Integer> cuts = new ArrayList<>(List.of(0));
        long acc = 0;
        int made = 1;
        for (int blk = 0; blk < blocks && made < n; blk++) {
            acc += cost[blk];
            // cut after this block once its share is reached, leaving a block for each remaining shard
            if (acc * n >= total * made && blk + 1 < blocks && blocks - (blk + 1) >= n - made) {
                cuts.add((blk + 1) * cols);
                made++;
            }
        }
        cuts.add(nk);
        return cuts.stream().mapToInt(Integer::intValue).toArray();
    }

    /** Adds each block's visited pairs (rows × keys of the block's own keys) of one layout. */
    private static void addBlockCosts(HeadLayout l, long[] cost) {
        int cols = l.geometry().blockCols();
        for (int t = 0; t < l.tileCount(); t++) {
            long rows = l.rowCount(t);
            for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
                cost[l.fullBlock(i)] += rows * l.blockWidth(l.fullBlock(i));
            }
            for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
                cost[l.partialBlock(i)] += rows * l.blockWidth(l.partialBlock(i));
            }
            for (int i = l.gatherStart(t); i < l.gatherEnd(t); i++) {
                cost[l.gatherKey(i) / cols] += rows;
            }
            for (int i = l.unconditionalStart(t); i < l.unconditionalEnd(t); i++) {
                cost[l.unconditionalKey(i) / cols] += rows;
            }
        }
    }

    /** One layout's tiles, keeping only blocks and keys in {@code [fromKey, toKey)}. */
    private static HeadLayout restrict(PlanContext context, HeadLayout l, int fromKey, int toKey) {
        int cols = l.geometry().blockCols();
        int b0 = fromKey / cols;
        int b1 = (toKey + cols - 1) / cols;
        HeadLayoutBuilder out = HeadLayout.builder(context, l.predicate());
        for (int t = 0; t < l.tileCount(); t++) {
            if (!hasKeyIn(l, t, b0, b1, fromKey, toKey)) {
                continue;
            }
            HeadLayoutBuilder.Tile tile;
            if (l.isListed(t)) {
                int[] rows = new int[l.rowCount(t)];
                for (int i = 0; i < rows.length; i++) {
                    rows[i] = l.row(t, i);
                }
                tile = out.listedTile(rows);
            } else {
                tile = out.tile(l.rowStart(t), l.rowCount(t));
            }
            for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
                if (l.fullBlock(i) >= b0 && l.fullBlock(i) < b1) {
                    tile.full(l.fullBlock(i));
                }
            }
            for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
                if (l.partialBlock(i) >= b0 && l.partialBlock(i) < b1) {
                    tile.partial(l.partialBlock(i));
                }
            }
            for (int i = l.gatherStart(t); i < l.gatherEnd(t); i++) {
                int k = l.gatherKey(i);
                if (k >= fromKey && k < toKey) {
                    tile.gather(k, l.gatherLogWeight(i));
                }
            }
            for (int i = l.unconditionalStart(t); i < l.unconditionalEnd(t); i++) {
                int k = l.unconditionalKey(i);
                if (k >= fromKey && k < toKey) {
                    tile.unconditional(k, l.unconditionalLogWeight(i));
                }
            }
            tile.end();
        }
        return out.build();
    }

    private static boolean hasKeyIn(HeadLayout l, int t, int b0, int b1, int fromKey, int toKey) {
        for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
            if (l.fullBlock(i) >= b0 && l.fullBlock(i) < b1) {
                return true;
            }
        }
        for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
            if (l.partialBlock(i) >= b0 && l.partialBlock(i) < b1) {
                return true;
            }
        }
        for (int i = l.gatherStart(t); i < l.gatherEnd(t); i++) {
            if (l.gatherKey(i) >= fromKey && l.gatherKey(i) < toKey) {
                return true;
            }
        }
        for (int i = l.unconditionalStart(t); i < l.unconditionalEnd(t); i++) {
            if (l.unconditionalKey(i) >= fromKey && l.unconditionalKey(i) < toKey) {
                return true;
            }
        }
        return false;
    }
}
