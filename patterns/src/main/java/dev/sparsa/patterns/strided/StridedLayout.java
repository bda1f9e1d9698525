package dev.sparsa.patterns.strided;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;

/**
 * The layout of Sparse Transformer's strided pattern ({@code 0 ≤ δ < l} or {@code δ mod l == 0},
 * under the context's causality), built in O(tiles + listed keys) without evaluating any pair:
 * <ul>
 *   <li>the <b>band</b> {@code 0 ≤ δ < l}: one contiguous tile per {@code tileRows} rows, blocks
 *       classified by the predicate {@code base ∧ band[0, l − 1]} (the layout's predicate);
 *   <li>the <b>strided part</b> ({@code δ = ±l, ±2l, …}): rows whose positions share a residue
 *       {@code ρ} mod {@code l} share their strided keys ({@code ρ + l·i}), so they are grouped by
 *       residue into listed tiles of up to {@code tileRows} rows (row {@code j} = position {@code ρ +
 *       l·j}). Keys every row of a group admits are unconditional keys of the group's tile; the
 *       triangle inside the group (causal: key {@code i} for rows {@code j > i}; non-causal: every
 *       {@code i ≠ j}) is split recursively into halves, each a smaller listed tile of unconditional
 *       keys.
 * </ul>
 * A row appears in its band tile and in one or more strided tiles with disjoint key sets (backends
 * merge them through the LSE).
 */
final class StridedLayout {
    private StridedLayout() {
    }

    static HeadLayout build(PlanContext ctx, int l) {
        if (l == 1) {
            // every δ is a multiple of 1: the whole base mask
            return HeadLayout.builder(ctx, ctx.basePredicate()).tilesByPredicate(t -> 0, t -> ctx.keyBlocks() - 1).build();
        }
        ElementPredicate band = ctx.basePredicate().withBand(0, l - 1);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, band);
        int rows = ctx.geometry().tileRows();
        int cols = ctx.geometry().blockCols();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        long offset = ctx.queryOffset();
        if (nk == 0) {
            for (int start = 0; start < nq; start += rows) {
                b.tile(start, Math.min(rows, nq - start)).end();
            }
            return b.build();
        }
        // the band: keys [pLo - l + 1, pHi] cover it
        for (int start = 0; start < nq; start += rows) {
            int count = Math.min(rows, nq - start);
            long pLo = start + offset;
            long pHi = pLo + count - 1;
            long kLo = Math.max(0, pLo - l + 1);
            long kHi = Math.min(nk - 1L, pHi);
            HeadLayoutBuilder.Tile t = b.tile(start, count);
            if (kLo <= kHi) {
                t.blocksByPredicate((int) (kLo / cols), (int) (kHi / cols));
            }
            t.end();
        }
        // the strided part, residue by residue
        Strided s = new Strided(b, ctx.causal(), l, nk, offset, rows);
        long pFirst = offset;
        long pLast = offset + nq - 1;
        // only residues some row has: O(min(l, rows)), however large l is
        for (long first = pFirst; first <= Math.min(pLast, pFirst + l - 1); first++) {
            int rho = (int) Math.floorMod(first, (long) l);
            // rows j with position rho + l*j in [pFirst, pLast]
            long jLo = Math.floorDiv(pFirst - rho + l - 1, l);
            long jHi = Math.floorDiv(pLast - rho, l);
            for (long j0 = jLo; j0 <= jHi; j0 += rows) {
                long j1 = Math.min(jHi + 1, j0 + rows);
                s.group(rho, j0, j1);
            }
        }
        return b.build();
    }

    /** Emits the strided tiles of one residue class. */
    private record Strided(HeadLayoutBuilder b, boolean causal, int l, int nk, long offset, int rows) {
        /** Rows j in [j0, j1): keys outside the group for all of them, then the group's triangle(s). */
        void group(int rho, long j0, long j1) {
            long iMax = Math.floorDiv(nk - 1L - rho, l); // last key index with a valid position
            // keys i < j0 (every row j >= j0 admits them), and for non-causal also i >= j1
            tile(rho, j0, j1, 0, Math.min(j0, iMax + 1));
            if (!causal) {
                tile(rho, j0, j1, j1, iMax + 1);
            }
            split(rho, j0, j1, iMax);
        }

        /** Within rows [a, c): causal keys i in [a, j) for row j; non-causal every i != j in [a, c). */
        private void split(int rho, long a, long c, long iMax) {
            if (c - a < 2) {
                return;
            }
            long m = a + (c - a) / 2; // rows may sit at negative indices: no unsigned shift
            tile(rho, m, c, a, Math.min(m, iMax + 1));
            if (!causal) {
                tile(rho, a, m, m, Math.min(c, iMax + 1));
            }
            split(rho, a, m, iMax);
            split(rho, m, c, iMax);
        }

        /** One listed tile: rows j in [jLo, jHi) (positions rho + l*j), unconditional keys i in [iLo, iHi). */
        private void tile(int rho, long jLo, long jHi, long iLo, long iHi) {
            iLo = Math.max(iLo, Math.floorDiv(-rho + l - 1, l)); // keys at positions >= 0
            if (iLo >= iHi || jLo >= jHi) {
                return;
            }
            int[] listed = new int[(int) (jHi - jLo)];
            for (int x = 0; x < listed.length; x++) {
                listed[x] = (int) (rho + l * (jLo + x) - offset);
            }
            HeadLayoutBuilder.Tile t = b.listedTile(listed);
            for (long i = iLo; i < iHi; i++) {
                t.unconditional((int) (rho + l * i), 0f);
            }
            t.end();
        }
    }
}
