package dev.sparsa.plan;

import dev.sparsa.spec.AttentionShape;
import java.util.ArrayList;
import java.util.List;

/**
 * The block-expanded form of a plan, and whether a plan may be replaced by a coarser one at all.
 *
 * <p>The block-expanded form runs contiguous tiles of {@code tileRows} rows, each visiting, as whole
 * blocks under the context's base predicate (causal or all), every key block that any of its rows
 * visits in the original plan (through a block, a gathered key or an unconditional key). It admits
 * every pair the original admits and the rest of those blocks; it trades extra pairs for the
 * kernel's cheapest path: full row tiles, bulk key loads, no element tests beyond the causal
 * diagonal. One-row tiles and scattered gathered keys are where it wins.
 *
 * <p>A plan is <em>replaceable</em> (by dense attention or its block-expanded form) when both admit a
 * superset of its pairs with the same (zero) weights: it has no log-weights, and every pair it
 * admits lies inside the context's causal mask.
 */
public final class BlockExpansion {
    private BlockExpansion() {
    }

    /**
     * Why a coarser plan would not admit a superset of {@code plan}'s pairs with the same weights,
     * or null when it would.
     */
    public static String whyNotReplaceable(SparsePlan plan) {
        if (plan == null) {
            throw new IllegalArgumentException("plan: must not be null");
        }
        PlanContext ctx = plan.context();
        for (HeadLayout lay : plan.layouts()) {
            if (lay.hasGatherLogWeights()) {
                return "its gathered keys carry log-weights";
            }
            int unconditional = lay.tileCount() == 0 ? 0 : lay.unconditionalEnd(lay.tileCount() - 1);
            for (int i = 0; i < unconditional; i++) {
                if (lay.unconditionalLogWeight(i) != 0f) {
                    return "its unconditional keys carry log-weights";
                }
            }
            if (!ctx.causal()) {
                continue;
            }
            boolean causalPredicate = lay.predicate().causal();
            for (int t = 0; t < lay.tileCount(); t++) {
                long qLo = firstRow(lay, t) + (long) lay.queryOffset();
                for (int i = lay.fullStart(t); i < lay.fullEnd(t); i++) {
                    int b = lay.fullBlock(i);
                    if (lay.blockStartKey(b) + lay.blockWidth(b) - 1 > qLo) {
                        return "a full block of tile " + t + " reaches past the causal mask";
                    }
                }
                for (int i = lay.unconditionalStart(t); i < lay.unconditionalEnd(t); i++) {
                    if (lay.unconditionalKey(i) > qLo) {
                        return "an unconditional key of tile " + t + " lies past the causal mask";
                    }
                }
                if (!causalPredicate) {
                    for (int i = lay.partialStart(t); i < lay.partialEnd(t); i++) {
                        int b = lay.partialBlock(i);
                        if (lay.blockStartKey(b) + lay.blockWidth(b) - 1 > qLo) {
                            return "its predicate (" + lay.predicate() + ") is not causal in a causal call";
                        }
                    }
                    for (int i = lay.gatherStart(t); i < lay.gatherEnd(t); i++) {
                        if (lay.gatherKey(i) > qLo) {
                            return "its predicate (" + lay.predicate() + ") is not causal in a causal call";
                        }
                    }
                }
            }
        }
        return null;
    }

    /**
     * The block-expanded form of {@code plan}, with the same head map.
     *
     * @throws IllegalArgumentException if the plan is not replaceable ({@link #whyNotReplaceable})
     */
    public static SparsePlan expand(SparsePlan plan) {
        String why = whyNotReplaceable(plan);
        if (why != null) {
            throw new IllegalArgumentException("plan: cannot be block-expanded: " + why);
        }
        PlanContext ctx = plan.context();
        List<HeadLayout> expanded = new ArrayList<>();
        for (HeadLayout lay : plan.layouts()) {
            expanded.add(expandLayout(ctx, lay));
        }
        AttentionShape s = plan.shape();
        SparsePlan.Builder b = SparsePlan.builder(ctx).describe(plan.description() + " block-expanded");
        for (int bi = 0; bi < s.batch(); bi++) {
            for (int h = 0; h < s.qHeads(); h++) {
                b.slice(bi, h, expanded.get(plan.layoutIndex(bi, h)));
            }
        }
        return b.build();
    }

    private static HeadLayout expandLayout(PlanContext ctx, HeadLayout lay) {
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int tiles = ctx.queryTiles();
        int words = (ctx.keyBlocks() + 63) >>> 6;
        long[][] blocks = new long[tiles][];
        long[] tileBlocks = new long[words];
        for (int t = 0; t < lay.tileCount(); t++) {
            java.util.Arrays.fill(tileBlocks, 0L);
            boolean any = false;
            for (int i = lay.fullStart(t); i < lay.fullEnd(t); i++) {
                any |= set(tileBlocks, lay.fullBlock(i));
            }
            for (int i = lay.partialStart(t); i < lay.partialEnd(t); i++) {
                any |= set(tileBlocks, lay.partialBlock(i));
            }
            for (int i = lay.gatherStart(t); i < lay.gatherEnd(t); i++) {
                any |= set(tileBlocks, lay.gatherKey(i) / cols);
            }
            for (int i = lay.unconditionalStart(t); i < lay.unconditionalEnd(t); i++) {
                any |= set(tileBlocks, lay.unconditionalKey(i) / cols);
            }
            if (!any) {
                continue;
            }
            int last = -1;
            for (int i = 0; i < lay.rowCount(t); i++) {
                int e = lay.row(t, i) / rows;
                if (e == last) {
                    continue; // contiguous rows: one expanded tile per run
                }
                last = e;
                if (blocks[e] == null) {
                    blocks[e] = new long[words];
                }
                for (int w = 0; w < words; w++) {
                    blocks[e][w] |= tileBlocks[w];
                }
            }
        }
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int e = 0; e < tiles; e++) {
            if (blocks[e] == null) {
                continue;
            }
            int start = e * rows;
            HeadLayoutBuilder.Tile tile = b.tile(start, Math.min(rows, ctx.queryLength() - start));
            for (int w = 0; w < words; w++) {
                for (long bits = blocks[e][w]; bits != 0; bits &= bits - 1) {
                    tile.blockByPredicate((w << 6) + Long.numberOfTrailingZeros(bits));
                }
            }
            tile.end();
        }
        return b.build();
    }

    private static boolean set(long[] bits, int block) {
        bits[block >>> 6] |= 1L << block;
        return true;
    }

    private static int firstRow(HeadLayout lay, int t) {
        if (!lay.isListed(t)) {
            return lay.rowStart(t);
        }
        int min = Integer.MAX_VALUE;
        for (int i = 0; i < lay.rowCount(t); i++) {
            min = Math.min(min, lay.row(t, i));
        }
        return min;
    }
}
