package dev.sparsa.plan;

import dev.sparsa.spec.TileGeometry;

/**
 * The sparse layout of one attention head: for every query tile, which rows it holds and which keys
 * they visit. Stored CSR-style in flat {@code int[]} arrays (one set per layout, shared by every head
 * that maps to it), so a GPU backend uploads it as a few buffers. Immutable.
 *
 * <p>Per tile {@code t}:
 * <ul>
 *   <li><b>rows</b>: {@link #rowCount(int)} query rows, contiguous from {@link #rowStart(int)} or
 *       listed ({@link #isListed(int)}, {@link #row(int, int)}) in any order without repeats;
 *   <li><b>full blocks</b>: key blocks every pair of which is admitted (no element test; a final
 *       block shorter than {@code blockCols} is cut at the key length);
 *   <li><b>partial blocks</b>: key blocks whose pairs the {@link #predicate()} decides one by one;
 *   <li><b>gathered keys</b>: ascending key positions outside the visited blocks, decided by the
 *       predicate, each with a log-weight;
 *   <li><b>unconditional keys</b>: ascending positions admitted without the predicate, each with a
 *       log-weight (a compensation token appended to K/V, for example).
 * </ul>
 *
 * <p>Set semantics: within a tile a (row, key) pair is admitted at most once; the builder removes
 * repeats and refuses weighted keys that would also be admitted through a block. A row may appear in
 * several tiles (LSH rounds), whose results backends merge through the LSE; the builder of such a
 * layout keeps the tiles' key sets disjoint for each row.
 *
 * <p>Cost counters are exact {@code long}s: {@link #pairsAdmitted()} counts (row, key) pairs the
 * semantics admit; {@link #pairsVisited()} counts what a kernel computes: every row of a tile times
 * every key of its visited blocks (cut at the key length) and gathered lists.
 */
public final class HeadLayout {
    private final TileGeometry geometry;
    private final int queryLength;
    private final int keyLength;
    private final int queryOffset;
    private final ElementPredicate predicate;

    private final int[] rowStart;
    private final int[] rowCount;
    private final int[] rowListOffset;
    private final int[] rowList;
    private final int[] fullOffsets;
    private final int[] fullBlocks;
    private final int[] partialOffsets;
    private final int[] partialBlocks;
    private final int[] gatherOffsets;
    private final int[] gatherKeys;
    private final float[] gatherLogWeights;
    private final int[] uncondOffsets;
    private final int[] uncondKeys;
    private final float[] uncondLogWeights;

    private final long pairsAdmitted;
    private final long pairsVisited;
    private final boolean rowsDisjoint;
    private final boolean coversEachRowOnce;
    private volatile RowTiles rowTiles; // built on first use

    HeadLayout(TileGeometry geometry, int queryLength, int keyLength, int queryOffset, ElementPredicate predicate,
               int[] rowStart, int[] rowCount, int[] rowListOffset, int[] rowList, int[] fullOffsets, int[] fullBlocks,
               int[] partialOffsets, int[] partialBlocks, int[] gatherOffsets, int[] gatherKeys, float[] gatherLogWeights,
               int[] uncondOffsets, int[] uncondKeys, float[] uncondLogWeights, long pairsAdmitted, long pairsVisited) {
        this.geometry = geometry;
        this.queryLength = queryLength;
        this.keyLength = keyLength;
        this.queryOffset = queryOffset;
        this.predicate = predicate;
        this.rowStart = rowStart;
        this.rowCount = rowCount;
        this.rowListOffset = rowListOffset;
        this.rowList = rowList;
        this.fullOffsets = fullOffsets;
        this.fullBlocks = fullBlocks;
        this.partialOffsets = partialOffsets;
        this.partialBlocks = partialBlocks;
        this.gatherOffsets = gatherOffsets;
        this.gatherKeys = gatherKeys;
        this.gatherLogWeights = gatherLogWeights;
        this.uncondOffsets = uncondOffsets;
        this.uncondKeys = uncondKeys;
        this.uncondLogWeights = uncondLogWeights;
        this.pairsAdmitted = pairsAdmitted;
        this.pairsVisited = pairsVisited;
        boolean[] seen = new boolean[queryLength];
        boolean disjoint = true;
        long distinct = 0;
        // the first repeated row settles both answers (not disjoint, so not each row once)
        for (int t = 0; t < tileCount() && disjoint; t++) {
            for (int i = 0; i < rowCount[t]; i++) {
                int r = row(t, i);
                disjoint &= !seen[r];
                distinct += seen[r] ? 0 : 1;
                seen[r] = true;
            }
        }
        this.rowsDisjoint = disjoint;
        this.coversEachRowOnce = disjoint && distinct == queryLength;
    }

    /**
     * A builder of a layout for the given context and element predicate.
     *
     * @throws IllegalArgumentException before anything is allocated, when the layout's tile table
     *     alone (see {@link #requireHeapFor}) cannot fit in what the heap has left
     */
    public static HeadLayoutBuilder builder(PlanContext context, ElementPredicate predicate) {
        requireHeapFor(context);
        return new HeadLayoutBuilder(context, predicate);
    }

    /**
     * The least a layout of one tile per {@code tileRows} query rows holds on the heap while it is
     * built: per tile seven ints (row range and the four list offsets) and one entry, about three
     * times over (the builder's lists double as they grow, and the final arrays are copies).
     */
    static final long HEAP_BYTES_PER_TILE = 3L * 8 * Integer.BYTES;

    /**
     * Refuses a context whose layout cannot fit in the heap, before any planning time is spent: the
     * estimate is a lower bound ({@link #HEAP_BYTES_PER_TILE} per query tile), compared with what the
     * heap can still allocate (after one garbage collection, so that garbage does not count).
     *
     * @throws IllegalArgumentException naming the query length, the tiling, the estimate and the heap
     */
    public static void requireHeapFor(PlanContext context) {
        long need = (long) context.queryTiles() * HEAP_BYTES_PER_TILE;
        if (need < (64L << 20) || need <= headroom()) {
            return;
        }
        System.gc(); // only on the way to a refusal: do not refuse for garbage
        long free = headroom();
        if (need > free) {
            throw new IllegalArgumentException("queryLength: " + context.queryLength() + " query rows in "
                    + context.geometry().tileRows() + "-row tiles need at least " + (need >> 20) + " MB of heap for"
                    + " the plan's tile table alone, and this JVM can allocate " + (free >> 20) + " MB more (-Xmx"
                    + (Runtime.getRuntime().maxMemory() >> 20) + "m): plan the sequence in chunks (a query offset per"
                    + " chunk), use taller tiles, or give the JVM more heap");
        }
    }

    private static long headroom() {
        Runtime rt = Runtime.getRuntime();
        return rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
    }

    // ------------------------------------------------------------------ geometry

    public TileGeometry geometry() {
        return geometry;
    }

    public int queryLength() {
        return queryLength;
    }

    public int keyLength() {
        return keyLength;
    }

    /** Absolute position of query 0 ({@code qPos = qIndex + queryOffset}). */
    public int queryOffset() {
        return queryOffset;
    }

    /** The element predicate of partial blocks and gathered keys. */
    public ElementPredicate predicate() {
        return predicate;
    }

    public int tileCount() {
        return rowCount.length;
    }

    // ------------------------------------------------------------------ rows

    public int rowCount(int tile) {
        return rowCount[tile];
    }

    /** True when the tile's rows are an explicit list rather than a contiguous range. */
    public boolean isListed(int tile) {
        return rowListOffset[tile] >= 0;
    }

    /** First row of a contiguous tile; the first listed row otherwise. */
    public int rowStart(int tile) {
        return isListed(tile) ? rowList[rowListOffset[tile]] : rowStart[tile];
    }

    /** The {@code i}-th query row (index, not position) of a tile. */
    public int row(int tile, int i) {
        int off = rowListOffset[tile];
        return off < 0 ? rowStart[tile] + i : rowList[off + i];
    }

    /** True when no row appears in two tiles. */
    public boolean rowsDisjoint() {
        return rowsDisjoint;
    }

    /** True when every query row appears in exactly one tile. */
    public boolean coversEachRowOnce() {
        return coversEachRowOnce;
    }

    /** Which tiles hold each row (built on first use, then shared). */
    public RowTiles rowTiles() {
        RowTiles r = rowTiles;
        if (r == null) {
            r = new RowTiles(this);
            rowTiles = r;
        }
        return r;
    }

    // ------------------------------------------------------------------ keys (CSR ranges)

    public int fullStart(int tile) {
        return fullOffsets[tile];
    }

    public int fullEnd(int tile) {
        return fullOffsets[tile + 1];
    }

    public int fullBlock(int i) {
        return fullBlocks[i];
    }

    public int partialStart(int tile) {
        return partialOffsets[tile];
    }

    public int partialEnd(int tile) {
        return partialOffsets[tile + 1];
    }

    public int partialBlock(int i) {
        return partialBlocks[i];
    }

    public int gatherStart(int tile) {
        return gatherOffsets[tile];
    }

    public int gatherEnd(int tile) {
        return gatherOffsets[tile + 1];
    }

    public int gatherKey(int i) {
        return gatherKeys[i];
    }

    /** Log-weight of gathered entry {@code i} (0 when the layout has none). */
    public float gatherLogWeight(int i) {
        return gatherLogWeights == null ? 0f : gatherLogWeights[i];
    }

    public boolean hasGatherLogWeights() {
        return gatherLogWeights != null;
    }

    public int unconditionalStart(int tile) {
        return uncondOffsets[tile];
    }

    public int unconditionalEnd(int tile) {
        return uncondOffsets[tile + 1];
    }

    public int unconditionalKey(int i) {
        return uncondKeys[i];
    }

    public float unconditionalLogWeight(int i) {
        return uncondLogWeights == null ? 0f : uncondLogWeights[i];
    }

    /** First key of block {@code b}. */
    public int blockStartKey(int block) {
        return block * geometry.blockCols();
    }

    /** Number of valid keys in block {@code b} (the last block may be short). */
    public int blockWidth(int block) {
        return Math.min(geometry.blockCols(), keyLength - block * geometry.blockCols());
    }

    // ------------------------------------------------------------------ flat copies for uploads

    /** Copies of the flat arrays, for backends that upload the layout (e.g. to a GPU). */
    public int[] rowStarts() { return rowStart.clone(); }
    public int[] rowCounts() { return rowCount.clone(); }
    public int[] rowListOffsets() { return rowListOffset.clone(); }
    public int[] rowList() { return rowList.clone(); }
    public int[] fullOffsets() { return fullOffsets.clone(); }
    public int[] fullBlocks() { return fullBlocks.clone(); }
    public int[] partialOffsets() { return partialOffsets.clone(); }
    public int[] partialBlocks() { return partialBlocks.clone(); }
    public int[] gatherOffsets() { return gatherOffsets.clone(); }
    public int[] gatherKeys() { return gatherKeys.clone(); }
    /** Gathered log-weights, zeros when the layout has none. */
    public float[] gatherLogWeights() {
        return gatherLogWeights == null ? new float[gatherKeys.length] : gatherLogWeights.clone();
    }
    public int[] unconditionalOffsets() { return uncondOffsets.clone(); }
    public int[] unconditionalKeys() { return uncondKeys.clone(); }
    /** Unconditional log-weights, zeros when the layout has none. */
    public float[] unconditionalLogWeights() {
        return uncondLogWeights == null ? new float[uncondKeys.length] : uncondLogWeights.clone();
    }

    // ------------------------------------------------------------------ semantics and costs

    /**
     * Visits, in a fixed order (full blocks, partial blocks, gathered, unconditional), every key that
     * tile {@code tile} admits for query row {@code row}. This is the token-level meaning of the
     * layout that the fp64 oracle and the tests evaluate.
     */
    public void forEachAdmittedKey(int tile, int row, KeyVisitor visitor) {
        long qPos = (long) row + queryOffset;
        for (int i = fullStart(tile); i < fullEnd(tile); i++) {
            int k0 = blockStartKey(fullBlocks[i]);
            int w = blockWidth(fullBlocks[i]);
            for (int k = k0; k < k0 + w; k++) {
                visitor.accept(k, 0f);
            }
        }
        for (int i = partialStart(tile); i < partialEnd(tile); i++) {
            int k0 = blockStartKey(partialBlocks[i]);
            int w = blockWidth(partialBlocks[i]);
            for (int k = k0; k < k0 + w; k++) {
                if (predicate.admits(qPos, k, keyLength)) {
                    visitor.accept(k, 0f);
                }
            }
        }
        for (int i = gatherStart(tile); i < gatherEnd(tile); i++) {
            if (predicate.admits(qPos, gatherKeys[i], keyLength)) {
                visitor.accept(gatherKeys[i], gatherLogWeight(i));
            }
        }
        for (int i = unconditionalStart(tile); i < unconditionalEnd(tile); i++) {
            visitor.accept(uncondKeys[i], unconditionalLogWeight(i));
        }
    }

    /** (row, key) pairs admitted, summed over tiles. */
    public long pairsAdmitted() {
        return pairsAdmitted;
    }

    /** (row, key) pairs a kernel computes: rows × keys of visited blocks and lists, summed over tiles. */
    public long pairsVisited() {
        return pairsVisited;
    }

    /** Bytes of the flat arrays. */
    public long sizeBytes() {
        long ints = rowStart.length + rowCount.length + rowListOffset.length + rowList.length + fullOffsets.length
                + fullBlocks.length + partialOffsets.length + partialBlocks.length + gatherOffsets.length
                + gatherKeys.length + uncondOffsets.length + uncondKeys.length;
        long floats = (gatherLogWeights == null ? 0 : gatherLogWeights.length)
                + (uncondLogWeights == null ? 0 : uncondLogWeights.length);
        return 4 * (ints + floats);
    }

    @Override
    public String toString() {
        return "HeadLayout[" + tileCount() + " tiles, " + fullBlocks.length + " full + " + partialBlocks.length
                + " partial blocks, " + gatherKeys.length + " gathered, " + uncondKeys.length + " unconditional, predicate "
                + predicate + ", admitted " + pairsAdmitted + ", visited " + pairsVisited + "]";
    }
}
