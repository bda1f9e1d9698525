package dev.sparsa.plan;

/**
 * Which tiles of a {@link HeadLayout} hold each query row: the row-to-tile index that backends and
 * the oracle use to merge the partial results of a row that appears in several tiles (LSH rounds),
 * and to find rows that no tile holds. Immutable; O(queryLength + row occurrences) ints.
 *
 * <p>An <em>entry</em> is one occurrence of a row in a tile, numbered in tile order: entry {@code
 * e = firstEntry(t) + i} is row {@code row(t, i)} of tile {@code t}. For row {@code r} the
 * occurrences are {@code entry(j)} and {@code tile(j)} for {@code j} in {@code [start(r), end(r))},
 * in ascending tile order.
 */
public final class RowTiles {
    private final int[] offsets;   // [queryLength + 1]
    private final int[] entries;   // entry numbers, grouped by row
    private final int[] tiles;     // the tile of each grouped entry
    private final int[] firstEntry; // [tileCount + 1]

    RowTiles(HeadLayout h) {
        int nq = h.queryLength();
        int tileCount = h.tileCount();
        firstEntry = new int[tileCount + 1];
        offsets = new int[nq + 1];
        for (int t = 0; t < tileCount; t++) {
            int count = h.rowCount(t);
            firstEntry[t + 1] = Math.addExact(firstEntry[t], count);
            for (int i = 0; i < count; i++) {
                offsets[h.row(t, i) + 1]++;
            }
        }
        for (int r = 0; r < nq; r++) {
            offsets[r + 1] += offsets[r];
        }
        int[] fill = java.util.Arrays.copyOf(offsets, nq);
        entries = new int[offsets[nq]];
        tiles = new int[offsets[nq]];
        for (int t = 0, e = 0; t < tileCount; t++) {
            for (int i = 0; i < h.rowCount(t); i++, e++) {
                int at = fill[h.row(t, i)]++;
                entries[at] = e;
                tiles[at] = t;
            }
        }
    }

    /** Row occurrences in all tiles (the number of entries). */
    public int entryCount() {
        return entries.length;
    }

    /** The first entry of tile {@code tile}: entries are numbered tile by tile, rows in tile order. */
    public int firstEntry(int tile) {
        return firstEntry[tile];
    }

    /** Where row {@code row}'s occurrences start in {@link #entry} and {@link #tile}. */
    public int start(int row) {
        return offsets[row];
    }

    /** Where row {@code row}'s occurrences end (exclusive). */
    public int end(int row) {
        return offsets[row + 1];
    }

    /** True when some tile holds row {@code row}. */
    public boolean covers(int row) {
        return offsets[row + 1] > offsets[row];
    }

    /** The entry number of occurrence {@code j}. */
    public int entry(int j) {
        return entries[j];
    }

    /** The tile of occurrence {@code j}. */
    public int tile(int j) {
        return tiles[j];
    }

    /** A copy of the row offsets ({@code queryLength + 1} ints), for uploads. */
    public int[] offsets() {
        return offsets.clone();
    }

    /** A copy of the entry numbers grouped by row, for uploads. */
    public int[] entries() {
        return entries.clone();
    }
}
