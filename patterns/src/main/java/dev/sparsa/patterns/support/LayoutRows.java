package dev.sparsa.patterns.support;

import dev.sparsa.plan.HeadLayout;

/**
 * For one {@link HeadLayout}, the tiles that hold each query row (CSR), so that a row's admitted
 * keys can be enumerated without scanning every tile. O(rows over all tiles) to build.
 */
public final class LayoutRows implements RowKeySource {
    private final HeadLayout layout;
    private final int[] offsets;
    private final int[] tiles;

    public LayoutRows(HeadLayout layout) {
        this.layout = Checks.notNull("layout", layout);
        int n = layout.queryLength();
        int[] counts = new int[n + 1];
        for (int t = 0; t < layout.tileCount(); t++) {
            for (int i = 0; i < layout.rowCount(t); i++) {
                counts[layout.row(t, i) + 1]++;
            }
        }
        for (int r = 0; r < n; r++) {
            counts[r + 1] += counts[r];
        }
        this.offsets = counts;
        this.tiles = new int[counts[n]];
        int[] fill = new int[n];
        for (int t = 0; t < layout.tileCount(); t++) {
            for (int i = 0; i < layout.rowCount(t); i++) {
                int r = layout.row(t, i);
                tiles[offsets[r] + fill[r]++] = t;
            }
        }
    }

    @Override
    public void keys(int row, dev.sparsa.plan.KeyVisitor sink) {
        for (int i = offsets[row]; i < offsets[row + 1]; i++) {
            layout.forEachAdmittedKey(tiles[i], row, sink);
        }
    }
}
