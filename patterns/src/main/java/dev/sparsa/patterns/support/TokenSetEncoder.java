package dev.sparsa.patterns.support;

import dev.sparsa.internal.FloatList;
import dev.sparsa.internal.IntList;
import dev.sparsa.plan.BlockClass;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import java.util.Arrays;
import java.util.List;

/**
 * Compiles any token-level key set (one sorted set per query row, from a {@link RowKeySource}) into
 * a {@link HeadLayout} with exactly that semantics. It is the general road for patterns whose sets
 * do not fit one element predicate (unions, exact vertical-slash, per-query top-k, multi-round LSH).
 *
 * <p>Per contiguous tile of {@code tileRows} rows, in this order of preference:
 * <ol>
 *   <li>a key block every row holds completely (and unweighted) is a <b>full</b> block;
 *   <li>a block on which every row's set equals what the predicate admits is a <b>partial</b> block;
 *   <li>otherwise key by key: a key whose rows are exactly those the predicate admits (with one
 *       weight) is <b>gathered</b>; a key every row holds with one weight is <b>unconditional</b>;
 *   <li>what is left ("irregular" pairs) goes to one extra single-row tile per row concerned, as full
 *       blocks where that row holds a whole block and unconditional keys otherwise.
 * </ol>
 * The row's key sets in its tiles are disjoint by construction. Given several candidate predicates,
 * the encoder prices each (pairs the shared tiles would visit, plus 8 per pair left to one-row
 * tiles) and keeps the cheapest (earliest on ties); the first candidate is emitted while priced. Cost: O(rows × keys per row + touched blocks × tileRows) per candidate; memory
 * O(tileRows × keys per row) beyond the layout itself. Never N×N.
 */
public final class TokenSetEncoder {
    private final PlanContext ctx;
    private final RowKeySource source;
    private final int tileRows;
    private final int blockCols;
    private final int keyLength;
    private final int offset;
    // per-tile scratch
    private int[][] rowKeys;
    private float[][] rowWeights;
    private int[] rowSize;
    private final KeyCollector collector = new KeyCollector();

    private TokenSetEncoder(PlanContext ctx, RowKeySource source) {
        this.ctx = ctx;
        this.source = source;
        this.tileRows = ctx.geometry().tileRows();
        this.blockCols = ctx.geometry().blockCols();
        this.keyLength = ctx.keyLength();
        this.offset = ctx.queryOffset();
        this.rowKeys = new int[tileRows][];
        this.rowWeights = new float[tileRows][];
        this.rowSize = new int[tileRows];
    }

    /**
     * Encodes {@code source} exactly, choosing among {@code candidates} (tried in order) the predicate
     * that costs the kernel least (visited pairs, one-row pairs weighted 8).
     *
     * @throws IllegalArgumentException if an argument is null, {@code candidates} is empty or the
     *     source reports a key outside {@code [0, keyLength)}
     */
    public static HeadLayout encode(PlanContext ctx, RowKeySource source, List<ElementPredicate> candidates) {
        Checks.notNull("ctx", ctx);
        Checks.notNull("source", source);
        if (candidates == null || candidates.isEmpty()) {
            throw new IllegalArgumentException("candidates: need at least one predicate");
        }
        TokenSetEncoder enc = new TokenSetEncoder(ctx, source);
        // the first candidate is emitted while it is priced; the others are priced only, each
        // stopping once past the best so far; a later winner is emitted in one more pass
        ElementPredicate first = candidates.get(0);
        HeadLayoutBuilder firstBuilder = HeadLayout.builder(ctx, first);
        long bestCost = enc.run(first, firstBuilder, Long.MAX_VALUE);
        ElementPredicate best = first;
        for (int i = 1; i < candidates.size(); i++) {
            ElementPredicate p = candidates.get(i);
            long c = enc.run(p, null, bestCost);
            if (c < bestCost) {
                bestCost = c;
                best = p;
            }
        }
        if (best == first) {
            return firstBuilder.build();
        }
        HeadLayoutBuilder b = HeadLayout.builder(ctx, best);
        enc.run(best, b, Long.MAX_VALUE);
        return b.build();
    }

    /** Encodes with the context's base predicate (causal or all) only. */
    public static HeadLayout encode(PlanContext ctx, RowKeySource source) {
        return encode(ctx, source, List.of(ctx.basePredicate()));
    }

    /**
     * Runs over every tile; with a builder, emits. Returns the cost of the encoding: pairs the
     * kernel would visit in the shared tiles plus {@link #ONE_ROW_PENALTY} per irregular pair (a
     * one-row tile computes far less per loaded key); stops once past {@code limit}.
     */
    private long run(ElementPredicate p, HeadLayoutBuilder out, long limit) {
        long irregular = 0;
        long visited = 0;
        int n = ctx.queryLength();
        TileOut tile = new TileOut();
        for (int r0 = 0; r0 < n; r0 += tileRows) {
            int cnt = Math.min(tileRows, n - r0);
            loadRows(r0, cnt);
            tile.reset(cnt);
            irregular += encodeTile(p, r0, cnt, tile);
            visited += tile.visited(cnt);
            if (out != null) {
                tile.emit(out, r0, cnt);
            } else if (visited + ONE_ROW_PENALTY * irregular >= limit) {
                return visited + ONE_ROW_PENALTY * irregular;
            }
        }
        return visited + ONE_ROW_PENALTY * irregular;
    }

    /** Cost of one pair in a one-row tile relative to one visited pair of a shared tile. */
    static final long ONE_ROW_PENALTY = 8;

    private void loadRows(int r0, int cnt) {
        for (int i = 0; i < cnt; i++) {
            collector.clear();
            source.keys(r0 + i, collector);
            collector.finish();
            int m = collector.size();
            if (rowKeys[i] == null || rowKeys[i].length < m) {
                int cap = Math.max(m, rowKeys[i] == null ? 16 : 2 * rowKeys[i].length); // geometric growth
                rowKeys[i] = new int[cap];
                rowWeights[i] = new float[cap];
            }
            for (int j = 0; j < m; j++) {
                int key = collector.key(j);
                if (key < 0 || key >= keyLength) {
                    throw new IllegalArgumentException("key: position " + key + " outside [0, " + keyLength + ")");
                }
                rowKeys[i][j] = key;
                rowWeights[i][j] = collector.weight(j);
            }
            rowSize[i] = m;
        }
    }

    private long encodeTile(ElementPredicate p, int r0, int cnt, TileOut tile) {
        int[] cur = tile.cursor;
        int[] end = tile.end;
        Arrays.fill(cur, 0, cnt, 0);
        long irregular = 0;
        while (true) {
            int block = Integer.MAX_VALUE;
            for (int i = 0; i < cnt; i++) {
                if (cur[i] < rowSize[i]) {
                    block = Math.min(block, rowKeys[i][cur[i]] / blockCols);
                }
            }
            if (block == Integer.MAX_VALUE) {
                break;
            }
            int k0 = block * blockCols;
            int k1 = Math.min(keyLength, k0 + blockCols); // exclusive
            int width = k1 - k0;
            boolean weighted = false;
            boolean full = true;
            for (int i = 0; i < cnt; i++) {
                int e = cur[i];
                while (e < rowSize[i] && rowKeys[i][e] < k1) {
                    weighted |= rowWeights[i][e] != 0f;
                    e++;
                }
                end[i] = e;
                full &= e - cur[i] == width;
            }
            if (!weighted && full) {
                tile.full.add(block);
            } else if (!weighted && matchesPredicate(p, r0, cnt, cur, end, k0, k1)) {
                tile.partial.add(block);
            } else {
                irregular += keyByKey(p, r0, cnt, cur, end, tile, k0, k1);
            }
            System.arraycopy(end, 0, cur, 0, cnt);
        }
        return irregular;
    }

    /** True when, for every row, its keys in [k0, k1) are exactly those the predicate admits. */
    private boolean matchesPredicate(ElementPredicate p, int r0, int cnt, int[] cur, int[] end, int k0, int k1) {
        for (int i = 0; i < cnt; i++) {
            long qPos = (long) r0 + i + offset;
            int have = end[i] - cur[i];
            BlockClass c = p.classify(qPos, qPos, k0, k1 - 1, keyLength);
            if (c == BlockClass.FULL) {
                if (have != k1 - k0) {
                    return false;
                }
                continue;
            }
            if (c == BlockClass.EMPTY) {
                if (have != 0) {
                    return false;
                }
                continue;
            }
            int j = cur[i];
            for (int k = k0; k < k1; k++) {
                boolean admitted = p.admits(qPos, k, keyLength);
                boolean held = j < end[i] && rowKeys[i][j] == k;
                if (admitted != held) {
                    return false;
                }
                if (held) {
                    j++;
                }
            }
        }
        return true;
    }

    /**
     * Gathers or makes unconditional what it can of one block; returns the irregular pairs left.
     * The rows' entries are bucketed by key (a counting sort over the block's width), so the cost
     * is O(entries + width) plus, per key, a row scan that stops at the first row contradicting the
     * predicate.
     */
    private long keyByKey(ElementPredicate p, int r0, int cnt, int[] cur, int[] end, TileOut tile, int k0, int k1) {
        int width = k1 - k0;
        int[] start = tile.bucketStart(width + 1);
        java.util.Arrays.fill(start, 0, width + 1, 0);
        int entries = 0;
        for (int i = 0; i < cnt; i++) {
            for (int j = cur[i]; j < end[i]; j++) {
                start[rowKeys[i][j] - k0 + 1]++;
                entries++;
            }
        }
        for (int x = 0; x < width; x++) {
            start[x + 1] += start[x];
        }
        int[] rowOf = tile.entryRows(entries);
        float[] wOf = tile.entryWeights(entries);
        int[] fill = tile.bucketFill(width);
        System.arraycopy(start, 0, fill, 0, width);
        for (int i = 0; i < cnt; i++) { // rows in ascending order, so each bucket lists its rows ascending
            for (int j = cur[i]; j < end[i]; j++) {
                int at = fill[rowKeys[i][j] - k0]++;
                rowOf[at] = i;
                wOf[at] = rowWeights[i][j];
            }
        }
        long irregular = 0;
        long qLo = (long) r0 + offset;
        long qHi = qLo + cnt - 1;
        for (int x = 0; x < width; x++) {
            int from = start[x];
            int to = start[x + 1];
            int holders = to - from;
            if (holders == 0) {
                continue;
            }
            int key = k0 + x;
            float w = wOf[from];
            boolean oneWeight = true;
            for (int e = from + 1; e < to && oneWeight; e++) {
                oneWeight = Float.floatToIntBits(wOf[e]) == Float.floatToIntBits(w);
            }
            boolean matches = false;
            if (oneWeight) {
                BlockClass c = p.classify(qLo, qHi, key, key, keyLength);
                if (c == BlockClass.FULL) {
                    matches = holders == cnt;
                } else if (c == BlockClass.PARTIAL) {
                    matches = true;
                    int e = from;
                    for (int i = 0; i < cnt && matches; i++) {
                        boolean held = e < to && rowOf[e] == i;
                        if (held) {
                            e++;
                        }
                        matches = held == p.admits(qLo + i, key, keyLength);
                    }
                }
            }
            if (matches) {
                tile.gatherKeys.add(key);
                tile.gatherWeights.add(w);
            } else if (oneWeight && holders == cnt) {
                tile.uncondKeys.add(key);
                tile.uncondWeights.add(w);
            } else {
                for (int e = from; e < to; e++) {
                    tile.irregular(rowOf[e], key, wOf[e]);
                }
                irregular += holders;
            }
        }
        return irregular;
    }

    /** What one tile emits, plus its rows' irregular pairs. */
    private final class TileOut {
        final int[] cursor = new int[tileRows];
        final int[] end = new int[tileRows];
        private int[] bucketStart = new int[0];
        private int[] bucketFill = new int[0];
        private int[] entryRows = new int[0];
        private float[] entryWeights = new float[0];

        int[] bucketStart(int n) {
            if (bucketStart.length < n) {
                bucketStart = new int[n];
            }
            return bucketStart;
        }

        int[] bucketFill(int n) {
            if (bucketFill.length < n) {
                bucketFill = new int[n];
            }
            return bucketFill;
        }

        int[] entryRows(int n) {
            if (entryRows.length < n) {
                entryRows = new int[Math.max(n, 2 * entryRows.length)];
            }
            return entryRows;
        }

        float[] entryWeights(int n) {
            if (entryWeights.length < n) {
                entryWeights = new float[Math.max(n, 2 * entryWeights.length)];
            }
            return entryWeights;
        }
        final IntList full = new IntList();
        final IntList partial = new IntList();
        final IntList gatherKeys = new IntList();
        final FloatList gatherWeights = new FloatList();
        final IntList uncondKeys = new IntList();
        final FloatList uncondWeights = new FloatList();
        final IntList[] irrKeys = new IntList[tileRows];
        final FloatList[] irrWeights = new FloatList[tileRows];

        /** Pairs the shared tile visits: rows × (keys of its blocks + gathered + unconditional). */
        long visited(int cnt) {
            long keys = (long) (full.size() + partial.size()) * blockCols + gatherKeys.size() + uncondKeys.size();
            return keys * cnt;
        }

        void reset(int cnt) {
            full.cleared();
            partial.cleared();
            gatherKeys.cleared();
            gatherWeights.cleared();
            uncondKeys.cleared();
            uncondWeights.cleared();
            for (int i = 0; i < cnt; i++) {
                if (irrKeys[i] != null) {
                    irrKeys[i].cleared();
                    irrWeights[i].cleared();
                }
            }
        }

        void irregular(int row, int key, float w) {
            if (irrKeys[row] == null) {
                irrKeys[row] = new IntList();
                irrWeights[row] = new FloatList();
            }
            irrKeys[row].add(key);
            irrWeights[row].add(w);
        }

        void emit(HeadLayoutBuilder out, int r0, int cnt) {
            if (full.size() + partial.size() + gatherKeys.size() + uncondKeys.size() > 0 || noIrregular(cnt)) {
                HeadLayoutBuilder.Tile t = out.tile(r0, cnt);
                for (int i = 0; i < full.size(); i++) {
                    t.full(full.get(i));
                }
                for (int i = 0; i < partial.size(); i++) {
                    t.partial(partial.get(i));
                }
                for (int i = 0; i < gatherKeys.size(); i++) {
                    t.gather(gatherKeys.get(i), gatherWeights.get(i));
                }
                for (int i = 0; i < uncondKeys.size(); i++) {
                    t.unconditional(uncondKeys.get(i), uncondWeights.get(i));
                }
                t.end();
            }
            for (int i = 0; i < cnt; i++) {
                if (irrKeys[i] == null || irrKeys[i].size() == 0) {
                    continue;
                }
                HeadLayoutBuilder.Tile t = out.tile(r0 + i, 1);
                IntList ks = irrKeys[i];
                FloatList ws = irrWeights[i];
                int j = 0;
                while (j < ks.size()) {
                    int block = ks.get(j) / blockCols;
                    int k0 = block * blockCols;
                    int width = Math.min(blockCols, keyLength - k0);
                    // a whole unweighted block of this row goes in as a full block
                    if (j + width <= ks.size() && ks.get(j) == k0 && ks.get(j + width - 1) == k0 + width - 1 && allZero(ws, j, width)) {
                        t.full(block);
                        j += width;
                        continue;
                    }
                    t.unconditional(ks.get(j), ws.get(j));
                    j++;
                }
                t.end();
            }
        }

        private boolean noIrregular(int cnt) {
            for (int i = 0; i < cnt; i++) {
                if (irrKeys[i] != null && irrKeys[i].size() > 0) {
                    return false;
                }
            }
            return true;
        }
    }

    private static boolean allZero(FloatList w, int from, int count) {
        for (int i = from; i < from + count; i++) {
            if (w.get(i) != 0f) {
                return false;
            }
        }
        return true;
    }
}
