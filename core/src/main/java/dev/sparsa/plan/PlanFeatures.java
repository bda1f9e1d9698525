package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import java.util.HashMap;
import java.util.Map;

/**
 * What a tile kernel's running time depends on, counted exactly over a plan's work items: the
 * inputs of a backend's cost model. A work item is one query tile of one query head or, where the
 * kernel stacks the query heads of a GQA group that share a layout ({@code stackGroups}), of the
 * whole group; its rows are padded to the kernel's row quantum (vector lanes on a CPU, the matrix
 * unit's height on a GPU), which is what makes one-row tiles expensive.
 *
 * @param items                 work items (tiles × stacked head groups, over every batch entry)
 * @param rows                  query rows read and output rows written, stacked heads counted
 * @param paddedRowKeys         Σ over items of (stacked rows rounded up to the quantum) × keys the
 *                              item visits (blocks, gathered and unconditional keys): the matrix
 *                              products and the softmax
 * @param causalMaskPairs       (row, key) element tests under a causal-only predicate (a comparison)
 * @param predicateMaskPairs    (row, key) element tests under any other predicate (band, sinks,
 *                              stride, neighbourhood: the full formula)
 * @param blockKeys             Σ over items of keys in visited blocks (K/V rows loaded in bulk)
 * @param listedKeys            Σ over items of gathered and unconditional keys (K/V rows loaded one
 *                              by one)
 * @param chunks                Σ over items of key chunks (a block, or up to {@code blockCols}
 *                              listed keys)
 * @param headDim               the shape's head dimension
 * @param valueDim              the shape's value dimension
 */
public record PlanFeatures(long items, long rows, long paddedRowKeys, long causalMaskPairs, long predicateMaskPairs,
                           long blockKeys, long listedKeys, long chunks, int headDim, int valueDim) {

    /**
     * The features of {@code plan}'s work items.
     *
     * @param rowQuantum  rows are padded to a multiple of this (≥ 1)
     * @param stackGroups whether the kernel runs the query heads of a GQA group that share a layout
     *                    as one item
     * @throws IllegalArgumentException if {@code rowQuantum < 1}
     */
    public static PlanFeatures of(SparsePlan plan, int rowQuantum, boolean stackGroups) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        checkQuantum(rowQuantum);
        AttentionShape s = plan.shape();
        int group = s.groupSize();
        // how many items of each (layout, stacked heads) there are
        Map<Long, Long> uses = new HashMap<>();
        for (int b = 0; b < s.batch(); b++) {
            for (int g = 0; g < s.kvHeads(); g++) {
                int h0 = g * group;
                boolean shared = stackGroups;
                for (int h = h0 + 1; h < h0 + group && shared; h++) {
                    shared = plan.layoutIndex(b, h) == plan.layoutIndex(b, h0);
                }
                if (shared) {
                    uses.merge(key(plan.layoutIndex(b, h0), group), 1L, Long::sum);
                } else {
                    for (int h = h0; h < h0 + group; h++) {
                        uses.merge(key(plan.layoutIndex(b, h), 1), 1L, Long::sum);
                    }
                }
            }
        }
        Sums total = new Sums();
        for (Map.Entry<Long, Long> e : uses.entrySet()) {
            int layout = (int) (e.getKey() >>> 32);
            int heads = (int) (long) e.getKey();
            Sums one = layoutSums(plan.layouts().get(layout), heads, rowQuantum);
            total.add(one, e.getValue());
        }
        return total.features(s);
    }

    /**
     * The features of dense attention in {@code context} (what {@code Dense} plans: every block up
     * to the causal limit, full below the diagonal, partial on it), computed per tile in O(tiles)
     * without building the plan.
     */
    public static PlanFeatures dense(PlanContext context, int rowQuantum, boolean stackGroups) {
        if (context == null) {
            throw new IllegalArgumentException("context: must not be null");
        }
        checkQuantum(rowQuantum);
        AttentionShape s = context.shape();
        int heads = stackGroups ? s.groupSize() : 1;
        long itemsPerTile = (long) s.batch() * s.qHeads() / heads;
        int rowsPerTile = context.geometry().tileRows();
        int cols = context.geometry().blockCols();
        long nk = s.keyLength();
        int blocks = context.keyBlocks();
        Sums per = new Sums();
        for (int start = 0; start < s.queryLength(); start += rowsPerTile) {
            int count = Math.min(rowsPerTile, s.queryLength() - start);
            long fullKeys;
            long partialKeys;
            long fullBlocks;
            long partialBlocks;
            if (!context.causal()) {
                fullBlocks = blocks;
                partialBlocks = 0;
                fullKeys = nk;
                partialKeys = 0;
            } else {
                long qLo = (long) start + context.queryOffset();
                long qHi = qLo + count - 1;
                // a block is full when its last key is at or before the first row, visited when its
                // first key is at or before the last row
                long full = qLo + 1 >= nk ? blocks : Math.max(0, Math.min(blocks, Math.floorDiv(qLo + 1, cols)));
                long visited = qHi < 0 ? 0 : Math.min(blocks, qHi / cols + 1);
                fullBlocks = full;
                partialBlocks = visited - full;
                fullKeys = Math.min(nk, full * cols);
                partialKeys = Math.min(nk, visited * cols) - fullKeys;
            }
            per.tile(count, heads, rowQuantum, fullKeys + partialKeys, 0, fullBlocks + partialBlocks,
                    context.causal() ? (long) count * partialKeys : 0, 0);
        }
        Sums total = new Sums();
        total.add(per, itemsPerTile);
        return total.features(s);
    }

    private static void checkQuantum(int rowQuantum) {
        if (rowQuantum < 1) {
            throw new IllegalArgumentException("rowQuantum: must be >= 1, got " + rowQuantum);
        }
    }

    private static long key(int layout, int heads) {
        return ((long) layout << 32) | heads;
    }

    private static Sums layoutSums(HeadLayout lay, int heads, int quantum) {
        Sums s = new Sums();
        int cols = lay.geometry().blockCols();
        ElementPredicate p = lay.predicate();
        boolean causalOnly = p.onlyCausal() && p.sinks() == 0;
        boolean noTest = causalOnly && !p.causal();
        for (int t = 0; t < lay.tileCount(); t++) {
            long blockKeys = 0;
            long masked = 0;
            for (int i = lay.fullStart(t); i < lay.fullEnd(t); i++) {
                blockKeys += lay.blockWidth(lay.fullBlock(i));
            }
            for (int i = lay.partialStart(t); i < lay.partialEnd(t); i++) {
                int w = lay.blockWidth(lay.partialBlock(i));
                blockKeys += w;
                masked += w;
            }
            long gathered = lay.gatherEnd(t) - lay.gatherStart(t);
            long uncond = lay.unconditionalEnd(t) - lay.unconditionalStart(t);
            masked += gathered;
            long chunks = (lay.fullEnd(t) - lay.fullStart(t)) + (lay.partialEnd(t) - lay.partialStart(t))
                    + (gathered + cols - 1) / cols + (uncond + cols - 1) / cols;
            int count = lay.rowCount(t);
            long maskPairs = noTest ? 0 : (long) count * masked;
            s.tile(count, heads, quantum, blockKeys, gathered + uncond, chunks, causalOnly ? maskPairs : 0,
                    causalOnly ? 0 : maskPairs);
        }
        return s;
    }

    /** Running sums; {@link #add} scales another's by a count of items. */
    private static final class Sums {
        long items;
        long rows;
        long paddedRowKeys;
        long causalMask;
        long predicateMask;
        long blockKeys;
        long listedKeys;
        long chunks;

        void tile(int count, int heads, int quantum, long blockKeys, long listedKeys, long chunks, long causalMask,
                  long predicateMask) {
            long stacked = (long) count * heads;
            long padded = (stacked + quantum - 1) / quantum * quantum;
            items++;
            rows += stacked;
            paddedRowKeys += padded * (blockKeys + listedKeys);
            this.causalMask += causalMask;
            this.predicateMask += predicateMask;
            this.blockKeys += blockKeys;
            this.listedKeys += listedKeys;
            this.chunks += chunks;
        }

        void add(Sums o, long times) {
            items += o.items * times;
            rows += o.rows * times;
            paddedRowKeys += o.paddedRowKeys * times;
            causalMask += o.causalMask * times;
            predicateMask += o.predicateMask * times;
            blockKeys += o.blockKeys * times;
            listedKeys += o.listedKeys * times;
            chunks += o.chunks * times;
        }

        PlanFeatures features(AttentionShape s) {
            return new PlanFeatures(items, rows, paddedRowKeys, causalMask, predicateMask, blockKeys, listedKeys, chunks,
                    s.headDim(), s.valueDim());
        }
    }
}
