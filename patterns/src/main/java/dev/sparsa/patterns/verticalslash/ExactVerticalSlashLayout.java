package dev.sparsa.patterns.verticalslash;

import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.BlockClass;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;

/**
 * The token-exact vertical-slash layout, built directly in O(tiles × (columns + band blocks) + slash
 * pairs) without per-row sorting:
 * <ul>
 *   <li>the longest run of consecutive diagonals (MInference always forces the most local ones)
 *       becomes the layout's predicate {@code base ∧ band[o_a, o_b]}, visited as full and partial
 *       blocks by contiguous tiles (only when the run has at least {@link #MIN_BAND_RUN} diagonals;
 *       otherwise the predicate is the base one);
 *   <li>a column is an unconditional key of a tile when every row of the tile sees it, a gathered key
 *       when the predicate admits it for exactly the rows that see it, and nothing when a visited
 *       block already admits it for those rows; a partial block holding a column that the predicate
 *       does not cover is listed key by key instead (columns unconditional, the rest gathered);
 *   <li>every other diagonal, and any column the rules above leave short, is irregular: each row
 *       gets one single-row tile of unconditional keys {@code p − o}, ascending.
 * </ul>
 * The token set is the definition's exactly (tests compare them pair by pair).
 */
final class ExactVerticalSlashLayout {
    /** Shortest run of consecutive diagonals worth a band predicate (a shorter run stays irregular). */
    static final int MIN_BAND_RUN = 4;

    private final PlanContext ctx;
    private final int[] columns;    // sorted, distinct, all < keyLength
    private final int[] diagonals;  // sorted, distinct
    private final ElementPredicate base;
    private final ElementPredicate p;
    private final int runLo;        // diagonals[runLo..runHi] form the band, or runLo > runHi
    private final int runHi;
    private final boolean[] isColumn;

    private ExactVerticalSlashLayout(PlanContext ctx, int[] columns, int[] diagonals) {
        this.ctx = ctx;
        this.columns = columns;
        this.diagonals = diagonals;
        this.base = ctx.basePredicate();
        int bestLo = 0;
        int bestLen = 0;
        for (int i = 0; i < diagonals.length; ) {
            int j = i;
            while (j + 1 < diagonals.length && diagonals[j + 1] == diagonals[j] + 1) {
                j++;
            }
            if (j - i + 1 > bestLen) {
                bestLen = j - i + 1;
                bestLo = i;
            }
            i = j + 1;
        }
        if (bestLen >= MIN_BAND_RUN) {
            runLo = bestLo;
            runHi = bestLo + bestLen - 1;
            p = base.withBand(diagonals[runLo], diagonals[runHi]);
        } else {
            runLo = 0;
            runHi = -1;
            p = base;
        }
        isColumn = new boolean[ctx.keyLength()];
        for (int c : columns) {
            isColumn[c] = true;
        }
    }

    /** {@code columns}: sorted, distinct, within the key length; {@code diagonals}: sorted, distinct. */
    static HeadLayout build(PlanContext ctx, int[] columns, int[] diagonals) {
        return new ExactVerticalSlashLayout(ctx, columns, diagonals).build();
    }

    private boolean banded() {
        return runLo <= runHi;
    }

    private HeadLayout build() {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nk = ctx.keyLength();
        int nb = ctx.keyBlocks();
        BlockClass[] cls = new BlockClass[nb];
        int[] touched = new int[nb];
        boolean[] converted = new boolean[nb];
        int[] irregular = new int[columns.length];
        for (int start = 0; start < ctx.queryLength(); start += rows) {
            int count = Math.min(rows, ctx.queryLength() - start);
            long pLo = (long) start + ctx.queryOffset();
            long pHi = pLo + count - 1;
            long lastKey = Plans.lastVisibleKey(ctx, start + count - 1);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            // the band's blocks
            int nt = 0;
            if (banded() && nk > 0) {
                long kLo = Math.max(0, pLo - diagonals[runHi]);
                long kHi = Math.min(lastKey, pHi - diagonals[runLo]);
                for (long blk = kLo / cols; kLo <= kHi && blk <= kHi / cols; blk++) {
                    int k0 = (int) blk * cols;
                    int k1 = Math.min(nk, k0 + cols) - 1;
                    BlockClass c = p.classify(pLo, pHi, k0, k1, nk);
                    if (c != BlockClass.EMPTY) {
                        cls[(int) blk] = c;
                        touched[nt++] = (int) blk;
                    }
                }
            }
            // columns
            int ni = 0;
            for (int i = 0; i < columns.length && columns[i] <= lastKey; i++) {
                int c = columns[i];
                long seeing = base.countAdmittedQueries(pLo, pHi, c, nk);
                if (seeing == 0) {
                    continue;
                }
                BlockClass bc = cls[c / cols];
                if (bc == BlockClass.FULL) {
                    continue;
                }
                long byPredicate = p.countAdmittedQueries(pLo, pHi, c, nk);
                if (bc == BlockClass.PARTIAL) {
                    if (byPredicate != seeing) {
                        converted[c / cols] = true;
                        if (seeing != count) {
                            irregular[ni++] = c;
                        }
                    }
                } else if (seeing == count) {
                    t.unconditional(c, 0f);
                } else if (byPredicate == seeing) {
                    t.gather(c);
                } else {
                    irregular[ni++] = c;
                    if (byPredicate > 0) {
                        t.gather(c);
                    }
                }
            }
            for (int i = 0; i < nt; i++) {
                int blk = touched[i];
                if (cls[blk] == BlockClass.FULL) {
                    t.full(blk);
                } else if (!converted[blk]) {
                    t.partial(blk);
                } else {
                    // key by key: columns every row sees are unconditional, the rest gathered
                    int k1 = Math.min(nk, (blk + 1) * cols);
                    for (int k = blk * cols; k < k1; k++) {
                        if (isColumn[k] && base.countAdmittedQueries(pLo, pHi, k, nk) == count) {
                            t.unconditional(k, 0f);
                        } else if (p.countAdmittedQueries(pLo, pHi, k, nk) > 0) {
                            t.gather(k);
                        }
                    }
                }
            }
            t.end();
            // irregular pairs: one single-row tile per row
            for (int r = start; r < start + count; r++) {
                irregularRow(b, r, irregular, ni);
            }
            for (int i = 0; i < nt; i++) {
                cls[touched[i]] = null;
                converted[touched[i]] = false;
            }
        }
        return b.build();
    }

    /** Row {@code r}'s slash keys outside the band and the irregular columns its tile left out. */
    private void irregularRow(HeadLayoutBuilder b, int r, int[] irregular, int ni) {
        long pos = (long) r + ctx.queryOffset();
        long last = Plans.lastVisibleKey(ctx, r);
        HeadLayoutBuilder.Tile t = null;
        // diagonals descending give keys ascending
        for (int i = diagonals.length - 1; i >= 0; i--) {
            if (i >= runLo && i <= runHi) {
                continue;
            }
            long k = pos - diagonals[i];
            if (k < 0) {
                continue;
            }
            if (k > last) {
                break;
            }
            if (isColumn[(int) k]) {
                continue; // columns are settled by the tile and the loop below
            }
            if (t == null) {
                t = b.tile(r, 1);
            }
            t.unconditional((int) k, 0f);
        }
        for (int i = 0; i < ni; i++) {
            int c = irregular[i];
            if (c <= last && !p.admits(pos, c, ctx.keyLength())) {
                if (t == null) {
                    t = b.tile(r, 1);
                }
                t.unconditional(c, 0f);
            }
        }
        if (t != null) {
            t.end();
        }
    }
}
