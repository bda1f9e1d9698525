package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;

/**
 * The metadata of a prepared dense decode step ({@link CudaDecodeStep}) in the decode kernels'
 * format ({@link DecodeFormat}), laid out once for a fixed batch, KV heads, (query head, row) pairs,
 * chunk count and block-table width, so that a refresh at new cache lengths rewrites the same ints
 * and the kernels' grids never change: a CUDA graph captured once replays every later step.
 *
 * <p>Sections: {@code lengths[batch]}, then block tables {@code [batch][tableWidth]} (paged caches;
 * width 0 for contiguous ones), then the work items, then the merge tiles. Items run in the order
 * (sequence, KV head, tile of at most {@value CudaDecode#PAIRS} pairs, chunk); each (sequence, head,
 * tile) has exactly {@link #chunks} items whether its keys fill them or not (an item with no keys
 * writes an empty partial: LSE −∞, which the merge weighs 0). With more than one chunk every tile
 * has a merge tile and its own scratch entries ({@code chunks × pairs} rows).
 *
 * <p>The cut of a sequence of {@code L} keys: with a fixed chunk length {@code F} (an explicit
 * {@code SplitKv.fixed}), chunk {@code c} is {@code [min(L, c·F), min(L, (c+1)·F))}, the chunks a
 * direct decode call makes (the same partials; the merge may associate their sum differently); else the keys are cut evenly, {@code
 * per = ⌈L / chunks⌉} rounded up to {@value #CUT_GRANULE} keys, so that short sequences still spread
 * over every chunk.
 */
final class DecodeStepLayout {
    /** The even cut's chunks hold whole multiples of this many keys (whole tiles of either decode kernel). */
    static final int CUT_GRANULE = 64;

    final int batch;
    final int kvHeads;
    final int pairs;
    final int chunks;
    final int fixedChunkKeys;
    final int tableWidth;
    final int tiles;
    final int items;
    final int merges;
    final int scratchEntries;
    final int oTables;
    final int oItems;
    final int oMerges;
    final int size;

    /**
     * @param fixedChunkKeys 0 for the even cut, else the fixed chunk length
     * @param tableWidth     block-table entries per sequence (0: contiguous cache)
     * @throws IllegalArgumentException if a count is out of range or the metadata or scratch would
     *     not fit the kernels' int indices
     */
    DecodeStepLayout(int batch, int kvHeads, int pairs, int chunks, int fixedChunkKeys, int tableWidth) {
        if (batch < 1 || kvHeads < 1 || pairs < 1 || chunks < 1 || fixedChunkKeys < 0 || tableWidth < 0) {
            throw new IllegalArgumentException("decode step: need batch, kvHeads, pairs, chunks >= 1 and fixedChunkKeys,"
                    + " tableWidth >= 0, got " + batch + ", " + kvHeads + ", " + pairs + ", " + chunks + ", "
                    + fixedChunkKeys + ", " + tableWidth);
        }
        this.batch = batch;
        this.kvHeads = kvHeads;
        this.pairs = pairs;
        this.chunks = chunks;
        this.fixedChunkKeys = fixedChunkKeys;
        this.tableWidth = tableWidth;
        this.tiles = (pairs + CudaDecode.PAIRS - 1) / CudaDecode.PAIRS;
        long units = (long) batch * kvHeads;
        long itemCount = units * tiles * chunks;
        long mergeCount = chunks > 1 ? units * tiles : 0;
        long scratch = chunks > 1 ? units * pairs * chunks : 0;
        long tables = (long) batch + (long) batch * tableWidth;
        long total = tables + DI_STRIDE * itemCount + DM_STRIDE * mergeCount;
        if (total > Integer.MAX_VALUE - 16 || scratch > Integer.MAX_VALUE || itemCount > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("decode step: " + itemCount + " work items and " + scratch
                    + " partial rows exceed the decode kernels' index range; use fewer chunks");
        }
        this.items = (int) itemCount;
        this.merges = (int) mergeCount;
        this.scratchEntries = (int) scratch;
        this.oTables = batch;
        this.oItems = (int) tables;
        this.oMerges = (int) (tables + DI_STRIDE * itemCount);
        this.size = (int) total;
    }

    /**
     * The sections' offsets in the order the scalars take them ({@code oTables, oSpanOffsets,
     * oSpanStarts, oSpanEnds, oSpanDelta, oItems, oMerges, oLists}): dense decode has no span table
     * and no page lists, so those sections are empty and sit where the items start.
     */
    long[] offsets() {
        return new long[] {oTables, oItems, oItems, oItems, oItems, oItems, oMerges, oItems};
    }

    /** The first key of chunk {@code c} ({@code 0 ≤ c ≤ chunks}) of a sequence of {@code length} keys. */
    int chunkStart(int length, int c) {
        long at;
        if (fixedChunkKeys > 0) {
            at = (long) c * fixedChunkKeys;
        } else {
            long per = ((long) length + chunks - 1) / chunks;
            per = (per + CUT_GRANULE - 1) / CUT_GRANULE * CUT_GRANULE;
            at = c * per;
        }
        return (int) Math.min(length, at);
    }

    /**
     * Writes the whole metadata into {@code meta[0, size)}.
     *
     * @param lengths each sequence's length
     * @param tables  the block tables, {@code [batch][≥ pages of the length]} (only the first {@code
     *                tableWidth} entries of a row are written), or null for a contiguous cache
     * @throws IllegalArgumentException if an array is too short or a length is negative
     */
    void write(int[] meta, int[] lengths, int[][] tables) {
        if (meta.length < size || lengths.length != batch || (tableWidth > 0) != (tables != null)) {
            throw new IllegalArgumentException("decode step: metadata of " + meta.length + " ints for " + size
                    + ", or " + lengths.length + " lengths for " + batch + " sequences, or tables "
                    + (tables == null ? "missing" : "given") + " for table width " + tableWidth);
        }
        for (int b = 0; b < batch; b++) {
            if (lengths[b] < 0) {
                throw new IllegalArgumentException("lengths: sequence " + b + " has length " + lengths[b]);
            }
            meta[b] = lengths[b];
            if (tableWidth > 0) {
                int n = Math.min(tableWidth, tables[b].length);
                System.arraycopy(tables[b], 0, meta, oTables + b * tableWidth, n);
                java.util.Arrays.fill(meta, oTables + b * tableWidth + n, oTables + (b + 1) * tableWidth, 0);
            }
        }
        int item = oItems;
        int merge = oMerges;
        int scratch = 0;
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < kvHeads; g++) {
                for (int t = 0; t < tiles; t++) {
                    int p0 = t * CudaDecode.PAIRS;
                    int m = Math.min(CudaDecode.PAIRS, pairs - p0);
                    if (chunks > 1) {
                        meta[merge + DM_B] = b;
                        meta[merge + DM_G] = g;
                        meta[merge + DM_PAIR0] = p0;
                        meta[merge + DM_PAIRS] = m;
                        meta[merge + DM_CHUNKS] = chunks;
                        meta[merge + DM_SCRATCH] = scratch;
                        merge += DM_STRIDE;
                    }
                    for (int c = 0; c < chunks; c++) {
                        meta[item + DI_B] = b;
                        meta[item + DI_G] = g;
                        meta[item + DI_PAIR0] = p0;
                        meta[item + DI_PAIRS] = m;
                        meta[item + DI_V0] = chunkStart(lengths[b], c);
                        meta[item + DI_V1] = chunkStart(lengths[b], c + 1);
                        meta[item + DI_SPAN] = 0;
                        meta[item + DI_SPAN_OFF] = 0;
                        meta[item + DI_SCRATCH] = chunks > 1 ? scratch + c * m : -1;
                        meta[item + DI_MERGE] = chunks > 1 ? (merge - oMerges) / DM_STRIDE - 1 : -1;
                        item += DI_STRIDE;
                    }
                    if (chunks > 1) {
                        scratch += chunks * m;
                    }
                }
            }
        }
    }
}
