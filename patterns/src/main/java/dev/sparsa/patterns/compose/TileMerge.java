package dev.sparsa.patterns.compose;

import dev.sparsa.plan.BlockClass;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import java.util.List;

/**
 * The block-level union of layouts of one head, without visiting pairs: O(tiles × entries + converted
 * blocks × blockCols). It applies when every layout uses the plain tiling (one contiguous tile per
 * {@code tileRows} rows), carries no log-weights, and uses either the context's base predicate or
 * one other predicate {@code P} (the union's predicate; every predicate a pattern builds contains
 * the base causality, so {@code P ⊆ base}). Per tile:
 * <ul>
 *   <li>a block full in any layout is full; a block partial under {@code P} stays partial; a block
 *       partial under the base predicate is partial under {@code P} when the two admit the same
 *       pairs there (equal counts, since {@code P ⊆ base});
 *   <li>a partial block that also holds another layout's unconditional or base-decided keys is listed
 *       key by key: a key whose rows (the union over the layouts) are all rows is unconditional,
 *       one whose rows are exactly {@code P}'s is gathered;
 *   <li>base-decided gathered keys become unconditional or {@code P}-gathered by the same rule.
 * </ul>
 * Anything else (a key whose rows neither rule expresses) makes {@link #merge} return null, and the
 * caller re-encodes the rows exactly.
 */
final class TileMerge {
    private final PlanContext ctx;
    private final List<HeadLayout> layouts;
    private final ElementPredicate base;
    private final ElementPredicate p;
    private final int nk;
    private final int cols;
    // per-tile scratch, reset through the touched lists
    private final byte[] blockState;   // 0 none, FULL, PART_P, PART_BASE; | CONVERT
    private final int[] touchedBlocks;
    private final byte[] keyState;     // 0 none, UNCOND, GATHER_P, GATHER_BASE (or-ed)
    private final int[] touchedKeys;

    private static final byte FULL = 1;
    private static final byte PART_P = 2;
    private static final byte PART_BASE = 4;
    private static final byte CONVERT = 8;
    private static final byte UNCOND = 1;
    private static final byte GATHER_P = 2;
    private static final byte GATHER_BASE = 4;

    private TileMerge(PlanContext ctx, List<HeadLayout> layouts, ElementPredicate p) {
        this.ctx = ctx;
        this.layouts = layouts;
        this.base = ctx.basePredicate();
        this.p = p;
        this.nk = ctx.keyLength();
        this.cols = ctx.geometry().blockCols();
        this.blockState = new byte[ctx.keyBlocks()];
        this.touchedBlocks = new int[ctx.keyBlocks()];
        this.keyState = new byte[nk];
        this.touchedKeys = new int[nk];
    }

    /** The union, or null when the layouts do not meet the conditions above. */
    static HeadLayout merge(PlanContext ctx, List<HeadLayout> layouts) {
        ElementPredicate base = ctx.basePredicate();
        ElementPredicate p = base;
        int rows = ctx.geometry().tileRows();
        for (HeadLayout l : layouts) {
            if (!l.predicate().equals(base)) {
                if (!p.equals(base) && !p.equals(l.predicate())) {
                    return null;
                }
                p = l.predicate();
            }
            if (l.hasGatherLogWeights() || l.tileCount() != ctx.queryTiles()) {
                return null;
            }
            for (float w : l.unconditionalLogWeights()) {
                if (w != 0f) {
                    return null;
                }
            }
            for (int t = 0; t < l.tileCount(); t++) {
                if (l.isListed(t) || l.rowStart(t) != t * rows || l.rowCount(t) != Math.min(rows, ctx.queryLength() - t * rows)) {
                    return null;
                }
            }
        }
        if (base.causal() && !p.causal()) {
            return null; // P ⊆ base is what the counting below relies on
        }
        return new TileMerge(ctx, layouts, p).run();
    }

    private HeadLayout run() {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        int tiles = ctx.queryTiles();
        int rows = ctx.geometry().tileRows();
        for (int t = 0; t < tiles; t++) {
            int start = t * rows;
            int count = Math.min(rows, ctx.queryLength() - start);
            if (!tile(b, t, start, count)) {
                return null;
            }
        }
        return b.build();
    }

    private boolean tile(HeadLayoutBuilder b, int t, int start, int count) {
        long qLo = (long) start + ctx.queryOffset();
        long qHi = qLo + count - 1;
        int nb = 0;
        int nkTouched = 0;
        for (HeadLayout l : layouts) {
            boolean isP = l.predicate().equals(p);
            for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
                nb = markBlock(l.fullBlock(i), FULL, nb);
            }
            for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
                nb = markBlock(l.partialBlock(i), isP ? PART_P : PART_BASE, nb);
            }
            for (int i = l.gatherStart(t); i < l.gatherEnd(t); i++) {
                nkTouched = markKey(l.gatherKey(i), isP ? GATHER_P : GATHER_BASE, nkTouched);
            }
            for (int i = l.unconditionalStart(t); i < l.unconditionalEnd(t); i++) {
                nkTouched = markKey(l.unconditionalKey(i), UNCOND, nkTouched);
            }
        }
        boolean ok = true;
        // blocks partial under the base predicate only: partial under P when both admit the same pairs
        for (int i = 0; i < nb; i++) {
            int blk = touchedBlocks[i];
            byte s = blockState[blk];
            if ((s & FULL) == 0 && (s & PART_BASE) != 0 && !sameOnBlock(blk, qLo, qHi)) {
                blockState[blk] |= CONVERT;
            }
        }
        // keys: inside a full block nothing; inside a partial block a key that changes its rows converts it
        HeadLayoutBuilder.Tile tile = b.tile(start, count);
        for (int i = 0; i < nkTouched && ok; i++) {
            int k = touchedKeys[i];
            byte bs = blockState[k / cols];
            if ((bs & FULL) != 0) {
                continue;
            }
            if ((bs & (PART_P | PART_BASE)) != 0) {
                if ((bs & CONVERT) == 0 && keyRowsDiffer(k, bs, qLo, qHi, count)) {
                    blockState[k / cols] |= CONVERT;
                }
                continue;
            }
            ok = emitKey(tile, k, keyState[k], false, qLo, qHi, count);
        }
        for (int i = 0; i < nb && ok; i++) {
            int blk = touchedBlocks[i];
            byte s = blockState[blk];
            if ((s & FULL) != 0) {
                tile.full(blk);
            } else if ((s & CONVERT) == 0) {
                tile.partial(blk);
            } else {
                int k1 = Math.min(nk, (blk + 1) * cols);
                boolean blockBase = (s & PART_BASE) != 0;
                for (int k = blk * cols; k < k1 && ok; k++) {
                    ok = emitKey(tile, k, (byte) (keyState[k] | ((s & PART_P) != 0 ? GATHER_P : 0)), blockBase, qLo, qHi, count);
                }
            }
        }
        for (int i = 0; i < nb; i++) {
            blockState[touchedBlocks[i]] = 0;
        }
        for (int i = 0; i < nkTouched; i++) {
            keyState[touchedKeys[i]] = 0;
        }
        if (ok) {
            tile.end();
        }
        return ok;
    }

    /**
     * Emits key {@code k} whose sources are {@code state} (plus the base predicate's rows when {@code
     * baseBlock}): unconditional when every row admits it, gathered when exactly P's rows do.
     * Returns false when neither expresses its rows.
     */
    private boolean emitKey(HeadLayoutBuilder.Tile tile, int k, byte state, boolean baseBlock, long qLo, long qHi, int count) {
        if ((state & UNCOND) != 0) {
            tile.unconditional(k, 0f);
            return true;
        }
        long rowsP = p.countAdmittedQueries(qLo, qHi, k, nk);
        long rows = (state & GATHER_BASE) != 0 || baseBlock ? base.countAdmittedQueries(qLo, qHi, k, nk)
                : (state & GATHER_P) != 0 ? rowsP : 0;
        if (rows == 0) {
            return true;
        }
        if (rows == count) {
            tile.unconditional(k, 0f);
            return true;
        }
        if (rows == rowsP) {
            tile.gather(k);
            return true;
        }
        return false;
    }

    /** Whether key k's union rows differ from what the (unconverted) partial block admits under P. */
    private boolean keyRowsDiffer(int k, byte blockState, long qLo, long qHi, int count) {
        byte s = keyState[k];
        if ((s & UNCOND) != 0) {
            return p.countAdmittedQueries(qLo, qHi, k, nk) != count;
        }
        if ((s & GATHER_BASE) != 0) {
            return p.countAdmittedQueries(qLo, qHi, k, nk) != base.countAdmittedQueries(qLo, qHi, k, nk);
        }
        return false; // P-gathered keys are what the block admits already
    }

    /** Whether P and the base predicate admit the same pairs of block {@code blk} for these rows. */
    private boolean sameOnBlock(int blk, long qLo, long qHi) {
        int k0 = blk * cols;
        int k1 = Math.min(nk, k0 + cols) - 1;
        if (p.equals(base)) {
            return true;
        }
        if (p.classify(qLo, qHi, k0, k1, nk) == BlockClass.FULL) {
            return true; // P admits everything there, so base does too
        }
        for (long q = qLo; q <= qHi; q++) {
            if (p.countAdmittedKeys(q, k0, k1, nk) != base.countAdmittedKeys(q, k0, k1, nk)) {
                return false;
            }
        }
        return true;
    }

    private int markBlock(int blk, byte what, int n) {
        if (blockState[blk] == 0) {
            touchedBlocks[n++] = blk;
        }
        blockState[blk] |= what;
        return n;
    }

    private int markKey(int k, byte what, int n) {
        if (keyState[k] == 0) {
            touchedKeys[n++] = k;
        }
        keyState[k] |= what;
        return n;
    }
}
