package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;

import dev.sparsa.kv.DecodePattern;

/**
 * The metadata of a prepared decode step ({@link CudaDecodeStep}) in the decode kernels' format
 * ({@link DecodeFormat}), laid out once for a fixed batch, KV heads, (query head, row) pairs, chunk
 * count, block-table width and pattern, so that a refresh at new cache lengths rewrites the same ints
 * and the kernels' grids never change: a CUDA graph captured once replays every later step.
 *
 * <p>Sections: {@code lengths[batch]}, then block tables {@code [batch][tableWidth]} (paged caches;
 * width 0 for contiguous ones), then the work items, then the merge tiles; for a pattern chosen on
 * the device, then its counts (Quest: the candidate pages per sequence; top-k: four ints per
 * (sequence, KV head), as {@code CudaDecode.plan} writes them) and the lists its choice kernel writes
 * ({@link #listWidth} ints per (sequence, KV head); the host writes everything before {@link
 * #oLists}). Items run in the order (sequence, KV head, tile of at most {@value CudaDecode#PAIRS}
 * pairs, chunk); each (sequence, head, tile) has exactly {@link #chunks} items whether its keys fill
 * them or not (an item with no keys writes an empty partial: LSE −∞, which the merge weighs 0). With
 * more than one chunk every tile has a merge tile and its own scratch entries ({@code chunks × pairs}
 * rows).
 *
 * <p>The keys a (sequence, KV head) visits ({@link #visits}): all {@code L} for dense decode; for
 * Quest (pages of {@code P}, a budget of {@code m} pages) all {@code L} while its {@code n = ⌈L / P⌉}
 * pages fit the budget, else {@code m − 1} whole pages and the last; for top-k its sinks, its
 * candidates (all, or its {@code tokens} best) and its window. The choice kernels read the lengths
 * and counts of the same refresh, so a graph replays the choice too.
 *
 * <p>The cut of the {@code L} keys a (sequence, KV head) visits: with a fixed chunk length {@code F} (an explicit
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
    /** The decode kernels' mode: {@link CudaDecode#MODE_DENSE}, {@code MODE_PAGES} (Quest) or {@link CudaDecode#MODE_TOKENS}. */
    final int mode;
    /** Quest's page budget, or top-k's tokens (0 for dense decode). */
    final int budget;
    /** Scores per (sequence, KV head) the choice ranks at most: Quest's candidate pages, top-k's candidates (at least 1). */
    final int scoreWidth;
    /** List entries per (sequence, KV head): the most pages or keys any length up to the longest visits. */
    final int listWidth;
    final int oCounts;
    final int oLists;
    /** Ints the host writes: everything before the lists. */
    final int hostSize;
    /** Ints of the device's metadata, the lists included. */
    final int size;
    private final DecodePattern chosen;
    private final int pageSize;
    private final int rows;

    /**
     * A dense decode step's layout.
     *
     * @param fixedChunkKeys 0 for the even cut, else the fixed chunk length
     * @param tableWidth     block-table entries per sequence (0: contiguous cache)
     * @throws IllegalArgumentException if a count is out of range or the metadata or scratch would
     *     not fit the kernels' int indices
     */
    DecodeStepLayout(int batch, int kvHeads, int pairs, int chunks, int fixedChunkKeys, int tableWidth) {
        this(batch, kvHeads, pairs, chunks, fixedChunkKeys, tableWidth, null, 0, 1, 0);
    }

    /**
     * The layout of a step that decodes the keys {@code chosen} picks on the device at every run.
     *
     * @param chosen    null (dense decode), a {@link DecodePattern.Quest} without sinks or window (a
     *                  paged cache: {@code pageSize > 0}), or a {@link DecodePattern.TopK}
     * @param pageSize  the paged cache's page size, 0 for a contiguous cache
     * @param rows      query rows per sequence (top-k's candidates end before the first row's window)
     * @param maxLength the longest length a sequence reaches: it sizes the scores and the lists
     * @throws IllegalArgumentException as above, or for a pattern the device does not choose
     */
    DecodeStepLayout(int batch, int kvHeads, int pairs, int chunks, int fixedChunkKeys, int tableWidth,
                     DecodePattern chosen, int pageSize, int rows, int maxLength) {
        if (chosen != null && !(chosen instanceof DecodePattern.TopK)
                && !(chosen instanceof DecodePattern.Quest qs && qs.sinks() == 0 && qs.window() == 0 && pageSize > 0)) {
            throw new IllegalArgumentException("pattern: a prepared step chooses Quest without sinks or window on a paged"
                    + " cache, or top-k; got " + chosen.name() + (pageSize > 0 ? "" : " on a contiguous cache"));
        }
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
        this.chosen = chosen;
        this.pageSize = pageSize;
        this.rows = rows;
        this.mode = chosen == null ? CudaDecode.MODE_DENSE
                : chosen instanceof DecodePattern.Quest ? CudaDecode.MODE_PAGES : CudaDecode.MODE_TOKENS;
        long counts = 0;
        int width = 1;
        int listW = 0;
        int bud = 0;
        if (chosen instanceof DecodePattern.Quest qs) {
            bud = qs.pageBudget(pageSize);
            int pages = (int) (((long) maxLength + pageSize - 1) / pageSize);
            width = Math.max(1, pages - 1);
            listW = Math.max(1, Math.min(pages, bud));
            counts = batch;
        } else if (chosen instanceof DecodePattern.TopK top) {
            bud = top.tokens();
            int[] unit = new int[4];
            listW = Math.max(1, CudaDecodeTopK.writeUnit(maxLength, rows, top, unit, 0));
            width = Math.max(1, unit[1]); // the candidates it ranks, the most at the longest length
            counts = 4L * batch * kvHeads;
        }
        if (fixedChunkKeys > 0 && (long) chunks * fixedChunkKeys < maxVisits(chosen, pageSize, rows, maxLength)) {
            throw new IllegalArgumentException("decode step: " + chunks + " chunks of " + fixedChunkKeys + " keys cover"
                    + " fewer than the " + maxVisits(chosen, pageSize, rows, maxLength) + " keys a sequence may visit");
        }
        this.budget = bud;
        this.scoreWidth = width;
        this.listWidth = listW;
        long tables = (long) batch + (long) batch * tableWidth;
        long host = tables + DI_STRIDE * itemCount + DM_STRIDE * mergeCount + counts;
        long total = host + (long) batch * kvHeads * listW;
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
        this.oCounts = (int) (oMerges + DM_STRIDE * mergeCount);
        this.oLists = (int) host;
        this.hostSize = (int) host;
        this.size = (int) total;
    }

    /**
     * The keys one (sequence, KV head) of {@code length} keys visits: all of them for dense decode;
     * Quest's chosen pages' keys (the last page's up to the length); top-k's sinks, kept candidates
     * and window.
     */
    int visits(int length) {
        return visits(chosen, pageSize, rows, length);
    }

    /**
     * The most keys a (sequence, KV head) of any length up to {@code maxLength} visits in a step
     * choosing {@code chosen} (null: dense) on pages of {@code pageSize} for {@code rows} rows: what the
     * chunks must cover. Not always the visits at {@code maxLength}: Quest visits every key while the
     * pages fit its budget of {@code m} pages, then {@code m − 1} pages and the last, part full, so
     * its most is {@code min(maxLength, m · pageSize)}.
     */
    static int maxVisits(DecodePattern chosen, int pageSize, int rows, int maxLength) {
        if (chosen instanceof DecodePattern.Quest qs) {
            return (int) Math.min(maxLength, (long) qs.pageBudget(pageSize) * pageSize);
        }
        return visits(chosen, pageSize, rows, maxLength); // dense and top-k grow with the length
    }

    /** {@link #visits(int)} of a step choosing {@code chosen} (null: dense) on pages of {@code pageSize} for {@code rows} rows. */
    static int visits(DecodePattern chosen, int pageSize, int rows, int length) {
        if (chosen instanceof DecodePattern.Quest qs) {
            int n = (int) (((long) length + pageSize - 1) / pageSize);
            int m = qs.pageBudget(pageSize);
            return n <= m ? length : (m - 1) * pageSize + (length - (n - 1) * pageSize);
        }
        if (chosen instanceof DecodePattern.TopK top) {
            return CudaDecodeTopK.writeUnit(length, rows, top, new int[4], 0);
        }
        return length;
    }

    /**
     * The sections' offsets in the order the scalars take them ({@code oTables, oSpanOffsets,
     * oSpanStarts, oSpanEnds, oSpanDelta, oItems, oMerges, oLists}): a step has no span table, so
     * that section is empty and sits where the items start; dense decode has no lists either.
     */
    long[] offsets() {
        return new long[] {oTables, oItems, oItems, oItems, oItems, oItems, oMerges,
            mode == CudaDecode.MODE_DENSE ? oItems : oLists};
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
     * Writes the host's metadata into {@code meta[0, hostSize)}: everything but the lists.
     *
     * @param lengths each sequence's length
     * @param tables  the block tables, {@code [batch][≥ pages of the length]} (only the first {@code
     *                tableWidth} entries of a row are written), or null for a contiguous cache
     * @throws IllegalArgumentException if an array is too short or a length is negative
     */
    void write(int[] meta, int[] lengths, int[][] tables) {
        if (meta.length < hostSize || lengths.length != batch || (tableWidth > 0) != (tables != null)) {
            throw new IllegalArgumentException("decode step: metadata of " + meta.length + " ints for " + hostSize
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
            int visit = visits(lengths[b]);
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
                        meta[item + DI_V0] = chunkStart(visit, c);
                        meta[item + DI_V1] = chunkStart(visit, c + 1);
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
        if (chosen instanceof DecodePattern.Quest) {
            for (int b = 0; b < batch; b++) {
                meta[oCounts + b] = Math.max(0, (int) (((long) lengths[b] + pageSize - 1) / pageSize) - 1);
            }
        } else if (chosen instanceof DecodePattern.TopK top) {
            for (int b = 0; b < batch; b++) {
                for (int g = 0; g < kvHeads; g++) {
                    CudaDecodeTopK.writeUnit(lengths[b], rows, top, meta, oCounts + 4 * (b * kvHeads + g));
                }
            }
        }
    }
}
