package dev.sparsa.plan;

import dev.sparsa.internal.FloatList;
import dev.sparsa.internal.IntList;
import dev.sparsa.spec.TileGeometry;
import java.util.Arrays;

/**
 * Builds a {@link HeadLayout} tile by tile. Not thread-safe. Each tile starts with {@link
 * #tile(int, int)} or {@link #listedTile(int[])} and ends with {@link Tile#end()}.
 */
public final class HeadLayoutBuilder {
    private final TileGeometry geometry;
    private final int queryLength;
    private final int keyLength;
    private final int queryOffset;
    private final int keyBlocks;
    private final ElementPredicate predicate;

    private final IntList rowStart = new IntList();
    private final IntList rowCount = new IntList();
    private final IntList rowListOffset = new IntList();
    private final IntList rowList = new IntList();
    private final IntList fullOffsets = IntList.of(0);
    private final IntList fullBlocks = new IntList();
    private final IntList partialOffsets = IntList.of(0);
    private final IntList partialBlocks = new IntList();
    private final IntList gatherOffsets = IntList.of(0);
    private final IntList gatherKeys = new IntList();
    private final FloatList gatherWeights = new FloatList();
    private final IntList uncondOffsets = IntList.of(0);
    private final IntList uncondKeys = new IntList();
    private final FloatList uncondWeights = new FloatList(); // empty until anyUncondWeight
    private boolean anyGatherWeight;
    private boolean anyUncondWeight;
    private long pairsAdmitted;
    private long pairsVisited;
    private Tile open;
    private static final int[] NO_INTS = new int[0];
    private static final long[] NO_LONGS = new long[0];
    private final IntList scratchFull = new IntList();
    private final IntList scratchPartial = new IntList();
    private final IntList scratchGathered = new IntList();
    private final FloatList scratchGatheredW = new FloatList();
    private final IntList scratchUncond = new IntList();
    private final FloatList scratchUncondW = new FloatList();

    HeadLayoutBuilder(PlanContext context, ElementPredicate predicate) {
        if (context == null || predicate == null) {
            throw new IllegalArgumentException("context and predicate: must not be null");
        }
        this.geometry = context.geometry();
        this.queryLength = context.queryLength();
        this.keyLength = context.keyLength();
        this.queryOffset = context.queryOffset();
        this.keyBlocks = context.keyBlocks();
        this.predicate = predicate;
    }

    /** Number of key blocks in this context. */
    public int keyBlocks() {
        return keyBlocks;
    }

    /** The predicate the layout is built with. */
    public ElementPredicate predicate() {
        return predicate;
    }

    /**
     * Opens a tile of the contiguous rows {@code [start, start + count)}.
     *
     * @throws IllegalArgumentException if the range leaves {@code [0, queryLength)} or holds more
     *     than {@code tileRows} rows
     */
    public Tile tile(int start, int count) {
        requireClosed();
        if (count < 1 || count > geometry.tileRows() || start < 0 || (long) start + count > queryLength) {
            throw new IllegalArgumentException("rows: tile [" + start + ", " + ((long) start + count)
                    + ") must hold 1.." + geometry.tileRows() + " rows inside [0, " + queryLength + ")");
        }
        open = new Tile(start, count, null, 0, false);
        return open;
    }

    /**
     * Opens a tile of explicitly listed query rows (any order, no repeats).
     *
     * @throws IllegalArgumentException if a row is out of range or repeated, or there are more
     *     than {@code tileRows} rows
     */
    public Tile listedTile(int[] rows) {
        requireClosed();
        if (rows == null || rows.length < 1 || rows.length > geometry.tileRows()) {
            throw new IllegalArgumentException("rows: a listed tile holds 1.." + geometry.tileRows() + " rows, got "
                    + (rows == null ? "null" : rows.length));
        }
        int[] sorted = rows;
        for (int i = 1; i < rows.length; i++) {
            if (rows[i] <= rows[i - 1]) { // not strictly ascending (the usual case is): check a sorted copy
                sorted = rows.clone();
                Arrays.sort(sorted);
                break;
            }
        }
        for (int i = 0; i < sorted.length; i++) {
            if (sorted[i] < 0 || sorted[i] >= queryLength) {
                throw new IllegalArgumentException("rows: row " + sorted[i] + " outside [0, " + queryLength + ")");
            }
            if (i > 0 && sorted[i] == sorted[i - 1]) {
                throw new IllegalArgumentException("rows: row " + sorted[i] + " listed twice in one tile");
            }
        }
        open = new Tile(-1, rows.length, rows.clone(), 0, false);
        return open;
    }

    /**
     * Opens a tile of the listed query rows {@code rows[from, to)}, which must be strictly
     * ascending: {@link #listedTile(int[])} without its copy of the array nor its sort check (the
     * rows are checked and written into the layout's row list in one pass); the caller may reuse
     * {@code rows} at once.
     *
     * @throws IllegalArgumentException if the range is empty or holds more than {@code tileRows}
     *     rows, or a row is out of range or not above the one before it
     */
    public Tile listedTile(int[] rows, int from, int to) {
        requireClosed();
        if (rows == null || from < 0 || to > rows.length || to - from < 1 || to - from > geometry.tileRows()) {
            throw new IllegalArgumentException("rows: a listed tile holds 1.." + geometry.tileRows() + " rows, got ["
                    + from + ", " + to + ") of " + (rows == null ? "null" : rows.length));
        }
        // written past the row list's end; appendRows() adds them to the list when the tile ends
        int at = rowList.size();
        int[] dst = rowList.room(to - from);
        int prev = -1;
        for (int i = from; i < to; i++) {
            int r = rows[i];
            if (r <= prev || r >= queryLength) {
                throw new IllegalArgumentException("rows: row " + r + (r >= queryLength ? " outside [0, " + queryLength + ")"
                        : " after row " + prev + ": the rows must be strictly ascending"));
            }
            dst[at + i - from] = r;
            prev = r;
        }
        open = new Tile(-1, to - from, dst, at, true);
        open.rowsWritten = true;
        return open;
    }

    /**
     * Convenience: one contiguous tile per {@code tileRows} rows, each visiting the key blocks
     * {@code [firstBlock(t), lastBlock(t)]} classified by the predicate.
     */
    public HeadLayoutBuilder tilesByPredicate(java.util.function.IntUnaryOperator firstBlock,
                                    java.util.function.IntUnaryOperator lastBlock) {
        int rows = geometry.tileRows();
        for (int t = 0, start = 0; start < queryLength; t++, start += rows) {
            Tile tile = tile(start, Math.min(rows, queryLength - start));
            tile.blocksByPredicate(Math.max(0, firstBlock.applyAsInt(t)), Math.min(keyBlocks - 1, lastBlock.applyAsInt(t)));
            tile.end();
        }
        return this;
    }

    /**
     * Reserves room for about {@code tiles} more tiles and {@code gatheredKeys} gathered and
     * {@code unconditionalKeys} unconditional keys in all, so that a builder that knows its size
     * does not regrow (and copy) its lists; a hint only, never a limit.
     *
     * @throws IllegalArgumentException if a count is negative
     */
    public HeadLayoutBuilder reserve(int tiles, int gatheredKeys, int unconditionalKeys) {
        if (tiles < 0 || gatheredKeys < 0 || unconditionalKeys < 0) {
            throw new IllegalArgumentException("reserve: counts must be >= 0, got " + tiles + ", " + gatheredKeys
                    + ", " + unconditionalKeys);
        }
        for (IntList l : new IntList[] {rowStart, rowCount, rowListOffset, fullOffsets, partialOffsets, gatherOffsets,
                uncondOffsets}) {
            l.reserve(tiles);
        }
        gatherKeys.reserve(gatheredKeys);
        uncondKeys.reserve(unconditionalKeys);
        return this;
    }

    /**
     * Reserves room for about {@code listedRows} more rows of listed tiles ({@link #listedTile}) and
     * {@code blocks} more visited blocks (whole or partial) in all; a hint only, never a limit, as
     * {@link #reserve(int, int, int)}.
     *
     * @throws IllegalArgumentException if a count is negative
     */
    public HeadLayoutBuilder reserveRowsAndBlocks(int listedRows, int blocks) {
        if (listedRows < 0 || blocks < 0) {
            throw new IllegalArgumentException("reserve: counts must be >= 0, got " + listedRows + ", " + blocks);
        }
        rowList.reserve(listedRows);
        fullBlocks.reserve(blocks);
        return this;
    }

    /**
     * Appends the zero weights of the gathered keys appended without weights ({@code gatherWeights}
     * may end before {@code gatherKeys}: unweighted gathers store none until a weighted one comes).
     */
    private void padGatherWeights() {
        gatherWeights.addZeros(gatherKeys.size() - gatherWeights.size());
    }

    /** Builds the layout. @throws IllegalStateException if a tile is still open */
    public HeadLayout build() {
        if (open != null) {
            throw new IllegalStateException("a tile is still open: call end() on it first");
        }
        if (anyGatherWeight) {
            padGatherWeights();
        }
        // lists reserved to their final size are handed over without a copy
        return new HeadLayout(geometry, queryLength, keyLength, queryOffset, predicate, rowStart.toArrayShared(),
                rowCount.toArrayShared(), rowListOffset.toArrayShared(), rowList.toArrayShared(), fullOffsets.toArrayShared(),
                fullBlocks.toArrayShared(), partialOffsets.toArrayShared(), partialBlocks.toArrayShared(),
                gatherOffsets.toArrayShared(), gatherKeys.toArrayShared(),
                anyGatherWeight ? gatherWeights.toArray() : null, uncondOffsets.toArray(), uncondKeys.toArray(),
                anyUncondWeight ? uncondWeights.toArray() : null, pairsAdmitted, pairsVisited);
    }

    private void requireClosed() {
        if (open != null) {
            throw new IllegalStateException("the previous tile is still open: call end() on it first");
        }
    }

    /** One tile under construction. */
    public final class Tile {
        private final int start;
        private final int count;
        private final int[] listed;
        /** Where this tile's rows start in {@code listed}. */
        private final int listedFrom;
        // the builder's scratch lists, reused by every tile (one tile is open at a time)
        private final IntList full = scratchFull.cleared();
        private final IntList partial = scratchPartial.cleared();
        private final IntList gathered = scratchGathered.cleared();
        private final FloatList gatheredW = scratchGatheredW.cleared();
        private final IntList uncond = scratchUncond.cleared();
        private final FloatList uncondW = scratchUncondW.cleared();
        private final long qLo;
        private final long qHi;
        // true while the gathered keys came in strictly ascending order; whether any has a weight
        private boolean ascendingGather = true;
        private boolean weightedGather;
        private int lastGathered = -1;
        // the same for the unconditional keys
        private boolean ascendingUncond = true;
        private boolean weightedUncond;
        private int lastUncond = -1;
        // true while every block came strictly after the one before (full and partial together) and
        // every partial one from the predicate: then the lists need no sort, dedupe or reclassifying
        private boolean plainBlocks = true;
        private int lastBlock = -1;
        /** Whether the listed rows are already written past the row list's end, at {@code listedFrom}. */
        private boolean rowsWritten;

        private Tile(int start, int count, int[] listed, int listedFrom, boolean ascending) {
            this.start = start;
            this.count = count;
            this.listed = listed;
            this.listedFrom = listedFrom;
            if (listed == null) {
                qLo = (long) start + queryOffset;
                qHi = (long) start + count - 1 + queryOffset;
            } else if (ascending) {
                qLo = (long) listed[listedFrom] + queryOffset;
                qHi = (long) listed[listedFrom + count - 1] + queryOffset;
            } else {
                int min = listed[0];
                int max = listed[0];
                for (int r : listed) {
                    min = Math.min(min, r);
                    max = Math.max(max, r);
                }
                qLo = (long) min + queryOffset;
                qHi = (long) max + queryOffset;
            }
        }

        /** Adds a block whose every pair is admitted, whatever the predicate says. */
        public Tile full(int block) {
            full.add(checkBlock(block));
            plainBlocks &= block > lastBlock;
            lastBlock = block;
            return this;
        }

        /** Adds a block whose pairs the predicate decides. */
        public Tile partial(int block) {
            partial.add(checkBlock(block));
            plainBlocks = false; // end() classifies it again (it may be full or empty for these rows)
            return this;
        }

        /** Adds a block as full, partial or not at all, as the predicate classifies it for this tile's rows. */
        public Tile blockByPredicate(int block) {
            checkBlock(block);
            int k0 = block * geometry.blockCols();
            int k1 = Math.min(keyLength, k0 + geometry.blockCols()) - 1;
            switch (predicate.classify(qLo, qHi, k0, k1, keyLength)) {
                case FULL -> full.add(block);
                case PARTIAL -> partial.add(block);
                case EMPTY -> {
                    return this;
                }
            }
            plainBlocks &= block > lastBlock;
            lastBlock = block;
            return this;
        }

        /** {@link #blockByPredicate} for every block in {@code [first, last]}. */
        public Tile blocksByPredicate(int first, int last) {
            for (int b = first; b <= last; b++) {
                blockByPredicate(b);
            }
            return this;
        }

        /** Adds a gathered key (decided by the predicate) with log-weight 0. */
        public Tile gather(int key) {
            return gather(key, 0f);
        }

        /** Adds a gathered key (decided by the predicate) with a log-weight. */
        public Tile gather(int key, float logWeight) {
            gathered.add(checkKey(key));
            gatheredW.add(checkWeight(logWeight));
            ascendingGather &= key > lastGathered;
            weightedGather |= logWeight != 0f;
            lastGathered = key;
            return this;
        }

        /**
         * Adds the gathered keys {@code keys[from, to)} with log-weight 0; the same as calling
         * {@link #gather(int)} for each, faster when they are strictly ascending.
         *
         * @throws IllegalArgumentException if a key is outside {@code [0, keyLength)} or the range
         *     is outside the array
         */
        public Tile gatherAll(int[] keys, int from, int to) {
            if (!checkedAscending(keys, from, to, lastGathered)) {
                for (int i = from; i < to; i++) {
                    gather(keys[i]);
                }
                return this;
            }
            gathered.addAll(keys, from, to);
            gatheredW.addZeros(to - from);
            if (to > from) {
                lastGathered = keys[to - 1];
            }
            return this;
        }

        /**
         * Checks the range and every key of {@code keys[from, to)}; true when they are strictly
         * ascending and above {@code last} (the bulk paths' condition).
         */
        private boolean checkedAscending(int[] keys, int from, int to, int last) {
            if (keys == null || from < 0 || to > keys.length || from > to) {
                throw new IllegalArgumentException("keys: range [" + from + ", " + to + ") outside an array of "
                        + (keys == null ? "null" : keys.length));
            }
            boolean ascending = true;
            for (int i = from; i < to; i++) {
                checkKey(keys[i]);
                ascending &= keys[i] > last;
                last = keys[i];
            }
            return ascending;
        }

        /** Adds an unconditional key (no predicate) with a log-weight. */
        public Tile unconditional(int key, float logWeight) {
            uncond.add(checkKey(key));
            uncondW.add(checkWeight(logWeight));
            ascendingUncond &= key > lastUncond;
            weightedUncond |= logWeight != 0f;
            lastUncond = key;
            return this;
        }

        /**
         * Adds the unconditional keys {@code keys[from, to)} with log-weight 0; the same as calling
         * {@link #unconditional(int, float)} for each, faster when they are strictly ascending.
         *
         * @throws IllegalArgumentException if a key is outside {@code [0, keyLength)} or the range
         *     is outside the array
         */
        public Tile unconditionalAll(int[] keys, int from, int to) {
            if (!checkedAscending(keys, from, to, lastUncond)) {
                for (int i = from; i < to; i++) {
                    unconditional(keys[i], 0f);
                }
                return this;
            }
            uncond.addAll(keys, from, to);
            uncondW.addZeros(to - from);
            if (to > from) {
                lastUncond = keys[to - 1];
            }
            return this;
        }

        /**
         * Normalises (sorts, removes repeats, promotes or drops partial blocks the predicate
         * decides wholesale), counts the tile's costs and appends it to the layout.
         *
         * @throws IllegalArgumentException if a key is given twice with different weights, or a
         *     weighted or unconditional key lies inside a visited block
         */
        public HeadLayoutBuilder end() {
            if (open != this) {
                throw new IllegalStateException("this tile was already ended");
            }
            if (ascendingGather && full.size() == 0 && partial.size() == 0 && uncond.size() == 0) {
                appendGatheredOnly();
                open = null;
                return HeadLayoutBuilder.this;
            }
            if (plainBlocks && gathered.size() == 0 && uncond.size() == 0) {
                appendBlocksOnly();
                open = null;
                return HeadLayoutBuilder.this;
            }
            int[] fullB = full.size() == 0 ? NO_INTS : full.sortedDistinct();
            IntList keepPartial = new IntList();
            IntList promoted = new IntList();
            for (int b : partial.size() == 0 ? NO_INTS : partial.sortedDistinct()) {
                if (Arrays.binarySearch(fullB, b) >= 0) {
                    continue;
                }
                int k0 = b * geometry.blockCols();
                int k1 = Math.min(keyLength, k0 + geometry.blockCols()) - 1;
                switch (predicate.classify(qLo, qHi, k0, k1, keyLength)) {
                    case FULL -> promoted.add(b);
                    case PARTIAL -> keepPartial.add(b);
                    case EMPTY -> { }
                }
            }
            if (promoted.size() > 0) {
                for (int i = 0; i < fullB.length; i++) {
                    promoted.add(fullB[i]);
                }
                fullB = promoted.sortedDistinct();
            }
            int[] partB = keepPartial.toArray();
            long[] g = sortedWeighted(gathered, gatheredW, "gathered");
            // unconditional keys uKeys[0, nu): already ascending and unweighted (the usual case),
            // they need no sort and are read in place
            int[] uKeys;
            int nu;
            float[] uWeights;
            if (ascendingUncond && !weightedUncond) {
                uKeys = uncond.array();
                nu = uncond.size();
                uWeights = null;
            } else {
                long[] u = sortedWeighted(uncond, uncondW, "unconditional");
                uKeys = new int[u.length];
                nu = u.length;
                uWeights = new float[u.length];
                for (int i = 0; i < u.length; i++) {
                    uKeys[i] = (int) (u[i] >>> 32);
                    uWeights[i] = Float.intBitsToFloat((int) u[i]);
                }
            }
            // unconditional keys win over gathered copies; neither may sit in a visited block.
            // Keys and blocks are both ascending, so one walk over the visited blocks serves all keys.
            int[] visitedB = mergeSorted(fullB, partB);
            int ng = 0;
            int vb = 0;
            int ui = 0;
            for (long e : g) {
                int key = (int) (e >>> 32);
                float w = Float.intBitsToFloat((int) e);
                int blk = key / geometry.blockCols();
                while (vb < visitedB.length && visitedB[vb] < blk) {
                    vb++;
                }
                if (vb < visitedB.length && visitedB[vb] == blk) {
                    if (w != 0f) {
                        throw new IllegalArgumentException("gathered: key " + key + " with log-weight " + w
                                + " lies inside visited block " + blk + "; a pair is admitted at most once");
                    }
                    continue;
                }
                while (ui < nu && uKeys[ui] < key) {
                    ui++;
                }
                if (ui < nu && uKeys[ui] == key) {
                    continue;
                }
                g[ng++] = e;
            }
            requireOutside(visitedB, uKeys, nu);
            append(fullB, partB, g, ng, uKeys, nu, uWeights);
            open = null;
            return HeadLayoutBuilder.this;
        }

        /** The tile's rows: start and count, and the listed rows if any. */
        private void appendRows() {
            rowStart.add(start);
            rowCount.add(count);
            if (listed == null) {
                rowListOffset.add(-1);
            } else {
                rowListOffset.add(rowList.size());
                if (rowsWritten) {
                    rowList.addWritten(count); // listedTile(rows, from, to) wrote them at listedFrom == size()
                } else {
                    rowList.addAll(listed, listedFrom, listedFrom + count);
                }
            }
        }

        /**
         * Throws if one of the ascending {@code keys[0, n)} lies in one of the ascending visited
         * blocks: one walk over both (each visited block is found by a binary search among the keys).
         */
        private void requireOutside(int[] visitedB, int[] keys, int n) {
            int bc = geometry.blockCols();
            int from = 0;
            for (int blk : visitedB) {
                int i = Arrays.binarySearch(keys, from, n, blk * bc);
                i = i >= 0 ? i : -i - 1; // the first key at or past the block's start
                if (i < n && keys[i] / bc == blk) {
                    throw new IllegalArgumentException("unconditional: key " + keys[i] + " lies inside visited block "
                            + blk + "; a pair is admitted at most once");
                }
                from = i;
            }
        }

        /**
         * Appends the normalised tile; {@code g[0, ng)} are its gathered (key, weight) pairs,
         * ascending, {@code uKeys[0, nu)} its unconditional keys, ascending.
         */
        private void append(int[] fullB, int[] partB, long[] g, int ng, int[] uKeys, int nu, float[] uWeights) {
            appendRows();
            long visitedKeys = 0;
            long admitted = 0;
            for (int b : fullB) {
                fullBlocks.add(b);
                int w = Math.min(geometry.blockCols(), keyLength - b * geometry.blockCols());
                visitedKeys += w;
                admitted += (long) w * count;
            }
            fullOffsets.add(fullBlocks.size());
            for (int b : partB) {
                partialBlocks.add(b);
                int k0 = b * geometry.blockCols();
                int k1 = Math.min(keyLength, k0 + geometry.blockCols());
                visitedKeys += k1 - k0;
                for (int i = 0; i < count; i++) {
                    admitted += predicate.countAdmittedKeys((long) rowAt(i) + queryOffset, k0, k1 - 1, keyLength);
                }
            }
            partialOffsets.add(partialBlocks.size());
            long[] sortedPositions = listed != null && ng > 0 && predicate.onlyCausal() ? sortedPositions() : null;
            padGatherWeights();
            int below = 0; // listed rows whose position is below the current key (keys ascend)
            for (int j = 0; j < ng; j++) {
                int key = (int) (g[j] >>> 32);
                float w = Float.intBitsToFloat((int) g[j]);
                gatherKeys.add(key);
                gatherWeights.add(w);
                anyGatherWeight |= w != 0f;
                if (sortedPositions != null) {
                    if (predicate.causal()) {
                        while (below < count && sortedPositions[below] < key) {
                            below++;
                        }
                    }
                    admitted += count - below;
                } else {
                    admitted += admittedQueries(key);
                }
            }
            visitedKeys += ng;
            gatherOffsets.add(gatherKeys.size());
            uncondKeys.addAll(uKeys, 0, nu);
            // weights are kept only once some key has one (the earlier keys' zeros are filled in then)
            boolean weighted = false;
            if (uWeights != null) {
                for (float w : uWeights) {
                    weighted |= w != 0f;
                }
            }
            if (weighted && !anyUncondWeight) {
                uncondWeights.addZeros(uncondKeys.size() - nu);
                anyUncondWeight = true;
            }
            if (anyUncondWeight) {
                if (uWeights == null) {
                    uncondWeights.addZeros(nu);
                } else {
                    for (float w : uWeights) {
                        uncondWeights.add(w);
                    }
                }
            }
            visitedKeys += nu;
            admitted += (long) nu * count;
            uncondOffsets.add(uncondKeys.size());
            pairsAdmitted += admitted;
            pairsVisited += visitedKeys * count;
        }

        /**
         * The block-sparse case: blocks only, added in ascending order, the partial ones as the
         * predicate classified them. What {@link #append} does with these lists as they are (no
         * sort, no dedupe, no gathered or unconditional keys), without copying them first.
         */
        private void appendBlocksOnly() {
            appendRows();
            long visitedKeys = 0;
            long admitted = 0;
            int cols = geometry.blockCols();
            int[] fa = full.array();
            for (int i = 0, n = full.size(); i < n; i++) {
                int b = fa[i];
                fullBlocks.add(b);
                int w = Math.min(cols, keyLength - b * cols);
                visitedKeys += w;
                admitted += (long) w * count;
            }
            fullOffsets.add(fullBlocks.size());
            int[] pa = partial.array();
            for (int j = 0, n = partial.size(); j < n; j++) {
                int b = pa[j];
                partialBlocks.add(b);
                int k0 = b * cols;
                int k1 = Math.min(keyLength, k0 + cols);
                visitedKeys += k1 - k0;
                for (int i = 0; i < count; i++) {
                    admitted += predicate.countAdmittedKeys((long) rowAt(i) + queryOffset, k0, k1 - 1, keyLength);
                }
            }
            partialOffsets.add(partialBlocks.size());
            padGatherWeights();
            gatherOffsets.add(gatherKeys.size());
            uncondOffsets.add(uncondKeys.size());
            pairsAdmitted += admitted;
            pairsVisited += visitedKeys * count;
        }

        /**
         * The common LSH and irregular-row case: only gathered keys, strictly ascending. Nothing
         * to sort, dedupe or check against blocks: keys and weights are copied in bulk and the
         * admitted pairs counted per key (one merge walk for a causal-only predicate).
         */
        private void appendGatheredOnly() {
            appendRows();
            fullOffsets.add(fullBlocks.size());
            partialOffsets.add(partialBlocks.size());
            int ng = gathered.size();
            if (weightedGather) {
                padGatherWeights();
                gatherWeights.addAll(gatheredW);
                anyGatherWeight = true;
            } // else: zero weights, left implicit (an unweighted layout stores none)
            gatherKeys.addAll(gathered);
            long admitted = 0;
            if (predicate.onlyCausal() && predicate.causal()) {
                // a key k is admitted by the rows at positions >= k
                int[] keys = gathered.array();
                if (listed == null) {
                    for (int j = 0; j < ng; j++) {
                        admitted += Math.max(0, qHi - Math.max(qLo, keys[j]) + 1);
                    }
                } else {
                    admitted = admittedByCausalRows(sortedPositions(), keys, ng);
                }
            } else {
                for (int j = 0; j < ng; j++) {
                    admitted += admittedQueries(gathered.get(j));
                }
            }
            gatherOffsets.add(gatherKeys.size());
            uncondOffsets.add(uncondKeys.size());
            pairsAdmitted += admitted;
            pairsVisited += (long) ng * count;
        }

        /**
         * Pairs (row, key) with position ≥ key, for ascending positions and ascending keys: one
         * merge walk, branch-free (which of the two advances is data-dependent).
         */
        private static long admittedByCausalRows(long[] pos, int[] keys, int ng) {
            long admitted = 0;
            int count = pos.length;
            int below = 0; // rows whose position is below the current key
            int j = 0;
            while (j < ng && below < count) {
                boolean rowFirst = pos[below] < keys[j];
                admitted += rowFirst ? 0 : count - below;
                below += rowFirst ? 1 : 0;
                j += rowFirst ? 0 : 1;
            }
            return admitted; // keys left once every row is below them are admitted by none
        }

        /** How many of this tile's rows admit a gathered key: O(1) for contiguous rows, one test per listed row. */
        private long admittedQueries(int key) {
            if (listed == null) {
                return predicate.countAdmittedQueries(qLo, qHi, key, keyLength);
            }
            long n = 0;
            for (int i = 0; i < count; i++) {
                n += predicate.admits((long) rowAt(i) + queryOffset, key, keyLength) ? 1 : 0;
            }
            return n;
        }

        private long[] sortedPositions() {
            long[] pos = new long[count];
            boolean ascending = true;
            for (int i = 0; i < count; i++) {
                pos[i] = (long) listed[listedFrom + i] + queryOffset;
                ascending &= i == 0 || pos[i] > pos[i - 1];
            }
            if (!ascending) {
                Arrays.sort(pos);
            }
            return pos;
        }

        private int rowAt(int i) {
            return listed == null ? start + i : listed[listedFrom + i];
        }

        private int checkBlock(int block) {
            if (block < 0 || block >= keyBlocks) {
                throw new IllegalArgumentException("block: index " + block + " outside [0, " + keyBlocks + ")");
            }
            return block;
        }

        private int checkKey(int key) {
            if (key < 0 || key >= keyLength) {
                throw new IllegalArgumentException("key: position " + key + " outside [0, " + keyLength + ")");
            }
            return key;
        }

        private float checkWeight(float w) {
            if (!Float.isFinite(w)) {
                throw new IllegalArgumentException("logWeight: must be finite, got " + w);
            }
            return w;
        }
    }

    /** Sorts (key, weight) pairs by key, merging repeats with equal weights, as packed longs. */
    private static long[] sortedWeighted(IntList keys, FloatList weights, String what) {
        if (keys.size() == 0) {
            return NO_LONGS;
        }
        long[] packed = new long[keys.size()];
        for (int i = 0; i < packed.length; i++) {
            packed[i] = ((long) keys.get(i) << 32) | (Float.floatToIntBits(weights.get(i)) & 0xFFFFFFFFL);
        }
        boolean ascending = true;
        for (int i = 1; i < packed.length && ascending; i++) {
            ascending = packed[i - 1] <= packed[i];
        }
        if (!ascending) {
            Arrays.sort(packed);
        }
        int n = 0;
        for (int i = 0; i < packed.length; i++) {
            if (n > 0 && (packed[n - 1] >>> 32) == (packed[i] >>> 32)) {
                if (packed[n - 1] != packed[i]) {
                    throw new IllegalArgumentException(what + ": key " + (packed[i] >>> 32)
                            + " given twice with different log-weights");
                }
                continue;
            }
            packed[n++] = packed[i];
        }
        return Arrays.copyOf(packed, n);
    }

    /** The union of two ascending, disjoint block lists, ascending. */
    private static int[] mergeSorted(int[] a, int[] b) {
        if (b.length == 0) {
            return a;
        }
        if (a.length == 0) {
            return b;
        }
        int[] m = new int[a.length + b.length];
        for (int i = 0, j = 0, k = 0; k < m.length; k++) {
            m[k] = j >= b.length || (i < a.length && a[i] < b[j]) ? a[i++] : b[j++];
        }
        return m;
    }

}
