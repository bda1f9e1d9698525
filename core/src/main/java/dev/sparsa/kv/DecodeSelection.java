package dev.sparsa.kv;

import java.util.Arrays;

/**
 * A sparse decode plan over the cache's key positions: for each (sequence, KV head) either every key
 * ({@link #isDense}), or the union of a static part evaluated at run time (the first {@code sinks}
 * keys; a {@code window} of keys ending at each query row) and a chosen part fixed when the
 * selection was made (ascending, disjoint spans of key positions, such as Quest's pages or top-k
 * tokens). Made by a backend's {@code select} from a {@link DecodePattern}, or built directly.
 * Immutable and thread-safe.
 *
 * <p>Token semantics (one rule for every backend and the oracle): in a sequence of current length
 * {@code L}, a query row at position {@code p ≤ L − 1} admits key {@code k} iff {@code k ≤ p} and
 * (the head is dense, or {@code k < sinks}, or {@code k} lies in a chosen span, or {@code p − k <
 * window}). Each key counts once.
 *
 * <p>Reuse: a selection made when sequence {@code b} had {@link #madeAt madeAt(b)} tokens stays
 * valid for any later step or layer whose length is at least that: its chosen spans never reach past
 * {@code madeAt(b)}, and keys appended since are admitted by the window part when the head has one
 * (by nothing else). See {@link SelectionReuse} for the rule that decides when to select afresh.
 *
 * <p>Kernels read it per work item through {@link #resolve}, or all at once through {@link
 * #spanTable}.
 */
public final class DecodeSelection {
    private final int batch;
    private final int kvHeads;
    private final int[] madeAt;
    private final boolean[] dense;
    private final int[] sinks;
    private final int[] window;
    private final int[] spanOffsets;
    private final int[] spanStarts;
    private final int[] spanEnds;
    private final String description;

    private DecodeSelection(int batch, int kvHeads, int[] madeAt, boolean[] dense, int[] sinks, int[] window,
                            int[] spanOffsets, int[] spanStarts, int[] spanEnds, String description) {
        this.batch = batch;
        this.kvHeads = kvHeads;
        this.madeAt = madeAt;
        this.dense = dense;
        this.sinks = sinks;
        this.window = window;
        this.spanOffsets = spanOffsets;
        this.spanStarts = spanStarts;
        this.spanEnds = spanEnds;
        this.description = description;
    }

    /**
     * A builder for {@code batch} sequences of {@code kvHeads} heads, made when the sequences had
     * {@code madeAt} tokens. Every (sequence, head) starts empty (no key admitted) until given a rule.
     *
     * @throws IllegalArgumentException if a size is not positive or {@code madeAt} has the wrong
     *     length or a negative entry
     */
    public static Builder builder(int batch, int kvHeads, int[] madeAt) {
        return new Builder(batch, kvHeads, madeAt);
    }

    /** Number of sequences. */
    public int batch() {
        return batch;
    }

    /** KV heads. */
    public int kvHeads() {
        return kvHeads;
    }

    /** The length sequence {@code b} had when the selection was made. */
    public int madeAt(int sequence) {
        return madeAt[sequence];
    }

    /** A copy of the lengths at which the selection was made. */
    public int[] madeAt() {
        return madeAt.clone();
    }

    /** What made it (a pattern's name, or "custom"). */
    public String description() {
        return description;
    }

    /** Whether (sequence, head) admits every key. */
    public boolean isDense(int sequence, int kvHead) {
        return dense[entry(sequence, kvHead)];
    }

    /** The (sequence, head)'s sinks. */
    public int sinks(int sequence, int kvHead) {
        return sinks[entry(sequence, kvHead)];
    }

    /** The (sequence, head)'s window (0: none). */
    public int window(int sequence, int kvHead) {
        return window[entry(sequence, kvHead)];
    }

    /** Keys in the chosen spans of (sequence, head). */
    public long chosenKeys(int sequence, int kvHead) {
        int e = entry(sequence, kvHead);
        long n = 0;
        for (int i = spanOffsets[e]; i < spanOffsets[e + 1]; i++) {
            n += spanEnds[i] - spanStarts[i];
        }
        return n;
    }

    /** The chosen spans of (sequence, head) as {@code [start0, end0, start1, end1, …]}. */
    public int[] chosenSpans(int sequence, int kvHead) {
        int e = entry(sequence, kvHead);
        int[] out = new int[2 * (spanOffsets[e + 1] - spanOffsets[e])];
        for (int i = spanOffsets[e], j = 0; i < spanOffsets[e + 1]; i++, j += 2) {
            out[j] = spanStarts[i];
            out[j + 1] = spanEnds[i];
        }
        return out;
    }

    /**
     * Whether, in a sequence of current length {@code length}, a row at {@code rowPos} admits key
     * {@code key}: the definition above, evaluated directly (for oracles and tests).
     */
    public boolean admits(int sequence, int kvHead, int length, long rowPos, int key) {
        int e = entry(sequence, kvHead);
        if (key < 0 || key >= length || key > rowPos) {
            return false;
        }
        if (dense[e] || key < sinks[e] || rowPos - key < window[e]) {
            return true;
        }
        // the last chosen span starting at or before the key (spans are ascending and disjoint)
        int lo = spanOffsets[e];
        int hi = spanOffsets[e + 1] - 1;
        while (lo <= hi) {
            int mid = (lo + hi) >>> 1;
            if (spanStarts[mid] <= key) {
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        return hi >= spanOffsets[e] && key < spanEnds[hi];
    }

    /**
     * The spans (sequence, head) visits in a step of {@code rows} query rows at the end of a sequence
     * of current length {@code length} (rows at positions {@code length − rows .. length − 1}),
     * written into {@code out} (cleared first): sinks and chosen spans unbanded, the window's keys
     * not already in them banded by {@code window − 1}, all below {@code length}. Rows at negative
     * positions admit nothing; a step whose last row is negative gets no span.
     *
     * @throws IllegalArgumentException if {@code length} is below the length the selection was made at
     */
    public void resolve(int sequence, int kvHead, int length, int rows, KeySpans out) {
        int e = entry(sequence, kvHead);
        if (length < madeAt[sequence]) {
            throw new IllegalArgumentException("selection: sequence " + sequence + " was selected at length "
                    + madeAt[sequence] + " but now has " + length + " tokens; select again");
        }
        out.clear();
        if (length <= 0) {
            return;
        }
        // each chosen span, the sinks, the window and the gaps of the window between them
        out.ensureCapacity(2 * (spanOffsets[e + 1] - spanOffsets[e]) + 3);
        if (dense[e]) {
            out.add(0, length, KeySpans.UNBANDED);
            return;
        }
        int first = length - rows;
        int w = window[e];
        // the window of the step: keys some row's window reaches
        int wStart = w > 0 ? (int) Math.max(0, (long) first - w + 1) : length;
        int cursor = 0; // keys below cursor are emitted
        int sinkEnd = Math.min(sinks[e], length);
        cursor = emitSelected(out, 0, sinkEnd, cursor, wStart, w);
        for (int i = spanOffsets[e]; i < spanOffsets[e + 1]; i++) {
            cursor = emitSelected(out, spanStarts[i], Math.min(spanEnds[i], length), cursor, wStart, w);
        }
        if (w > 0) {
            int from = Math.max(cursor, wStart);
            out.add(from, length, w - 1);
        }
    }

    /**
     * Emits the unbanded span {@code [s, e)} minus what is already emitted, preceded by the window
     * keys in the gap before it; returns the new cursor.
     */
    private static int emitSelected(KeySpans out, int s, int e, int cursor, int wStart, int w) {
        s = Math.max(s, cursor);
        if (e <= s) {
            return cursor;
        }
        if (w > 0 && s > wStart) {
            int gapFrom = Math.max(cursor, wStart);
            out.add(gapFrom, s, w - 1);
        }
        out.add(s, e, KeySpans.UNBANDED);
        return e;
    }

    /**
     * Every (sequence, head)'s resolved spans at the given lengths for a step of {@code rows} rows, in
     * flat arrays for a device (see {@link SpanTable}).
     *
     * @throws IllegalArgumentException if {@code lengths} does not have one entry per sequence or a
     *     length is below the selection's
     */
    public SpanTable spanTable(int[] lengths, int rows) {
        if (lengths == null || lengths.length != batch) {
            throw new IllegalArgumentException("lengths: expected " + batch + " lengths, got "
                    + (lengths == null ? "null" : lengths.length));
        }
        KeySpans spans = new KeySpans();
        int[] offsets = new int[batch * kvHeads + 1];
        int n = 0;
        int[] s = new int[16];
        int[] en = new int[16];
        int[] d = new int[16];
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < kvHeads; g++) {
                resolve(b, g, lengths[b], rows, spans);
                for (int i = 0; i < spans.size(); i++) {
                    if (n == s.length) {
                        s = Arrays.copyOf(s, n * 2);
                        en = Arrays.copyOf(en, n * 2);
                        d = Arrays.copyOf(d, n * 2);
                    }
                    s[n] = spans.start(i);
                    en[n] = spans.end(i);
                    d[n++] = spans.maxDelta(i);
                }
                offsets[b * kvHeads + g + 1] = n;
            }
        }
        return new SpanTable(batch, kvHeads, offsets, Arrays.copyOf(s, n), Arrays.copyOf(en, n), Arrays.copyOf(d, n));
    }

    /**
     * Refuses use with a cache it does not fit: other batch or head count, or a sequence now shorter
     * than when the selection was made.
     *
     * @throws IllegalArgumentException naming the sequence
     */
    public void requireFits(KvCache cache) {
        if (cache.batch() != batch || cache.kvHeads() != kvHeads) {
            throw new IllegalArgumentException("selection: made for " + batch + " sequences x " + kvHeads
                    + " KV heads, the cache has " + cache.batch() + " x " + cache.kvHeads());
        }
        for (int b = 0; b < batch; b++) {
            if (cache.length(b) < madeAt[b]) {
                throw new IllegalArgumentException("selection: sequence " + b + " was selected at length " + madeAt[b]
                        + " but the cache now holds " + cache.length(b) + " tokens; select again");
            }
        }
    }

    private int entry(int sequence, int kvHead) {
        if (sequence < 0 || sequence >= batch || kvHead < 0 || kvHead >= kvHeads) {
            throw new IllegalArgumentException("selection: (sequence " + sequence + ", kv head " + kvHead
                    + ") outside [" + batch + " x " + kvHeads + "]");
        }
        return sequence * kvHeads + kvHead;
    }

    @Override
    public String toString() {
        return "DecodeSelection[" + description + ", " + batch + " x " + kvHeads + ", made at "
                + Arrays.toString(madeAt) + "]";
    }

    /** Assembles a selection; every (sequence, head) starts with nothing admitted. Not thread-safe. */
    public static final class Builder {
        private final int batch;
        private final int kvHeads;
        private final int[] madeAt;
        private final boolean[] dense;
        private final int[] sinks;
        private final int[] window;
        private final int[][] spans;
        private final int[] counts;
        private String description = "custom";

        private Builder(int batch, int kvHeads, int[] madeAt) {
            if (batch < 1 || kvHeads < 1) {
                throw new IllegalArgumentException("batch and kvHeads: must be >= 1, got " + batch + " and " + kvHeads);
            }
            if (madeAt == null || madeAt.length != batch) {
                throw new IllegalArgumentException("madeAt: expected " + batch + " lengths, got "
                        + (madeAt == null ? "null" : madeAt.length));
            }
            for (int b = 0; b < batch; b++) {
                if (madeAt[b] < 0) {
                    throw new IllegalArgumentException("madeAt: sequence " + b + " has negative length " + madeAt[b]);
                }
            }
            this.batch = batch;
            this.kvHeads = kvHeads;
            this.madeAt = madeAt.clone();
            int n = batch * kvHeads;
            this.dense = new boolean[n];
            this.sinks = new int[n];
            this.window = new int[n];
            this.spans = new int[n][];
            this.counts = new int[n];
            Arrays.fill(spans, new int[0]);
        }

        private int entry(int sequence, int kvHead) {
            if (sequence < 0 || sequence >= batch || kvHead < 0 || kvHead >= kvHeads) {
                throw new IllegalArgumentException("selection: (sequence " + sequence + ", kv head " + kvHead
                        + ") outside [" + batch + " x " + kvHeads + "]");
            }
            return sequence * kvHeads + kvHead;
        }

        /** (sequence, head) admits every key. */
        public Builder dense(int sequence, int kvHead) {
            dense[entry(sequence, kvHead)] = true;
            return this;
        }

        /**
         * (sequence, head)'s static part: the first {@code s} keys and a window of {@code w} keys.
         *
         * @throws IllegalArgumentException if a size is negative
         */
        public Builder forced(int sequence, int kvHead, int s, int w) {
            if (s < 0 || w < 0) {
                throw new IllegalArgumentException("sinks and window: must be >= 0, got " + s + " and " + w);
            }
            int e = entry(sequence, kvHead);
            sinks[e] = s;
            window[e] = w;
            return this;
        }

        /**
         * Makes room for {@code spans} more chosen spans of (sequence, head), so that adding them
         * allocates nothing; a hint, with no effect on the selection.
         *
         * @throws IllegalArgumentException if (sequence, head) is out of range or {@code spans} is negative
         */
        public Builder reserve(int sequence, int kvHead, int spans) {
            int e = entry(sequence, kvHead);
            if (spans < 0) {
                throw new IllegalArgumentException("spans: must be >= 0, got " + spans);
            }
            if (counts[e] + 2L * spans > this.spans[e].length) {
                this.spans[e] = Arrays.copyOf(this.spans[e], (int) Math.min(Integer.MAX_VALUE - 8, counts[e] + 2L * spans));
            }
            return this;
        }

        /**
         * Adds chosen keys {@code [start, end)} to (sequence, head); spans of one (sequence, head) come
         * in ascending order (touching spans merge).
         *
         * @throws IllegalArgumentException if the span is empty or reversed, overlaps or precedes the
         *     previous one, or reaches past {@code madeAt(sequence)}
         */
        public Builder span(int sequence, int kvHead, int start, int end) {
            int e = entry(sequence, kvHead);
            if (start < 0 || end <= start || end > madeAt[sequence]) {
                throw new IllegalArgumentException("span: [" + start + ", " + end + ") of sequence " + sequence
                        + " must be non-empty within [0, " + madeAt[sequence] + ")");
            }
            int c = counts[e];
            if (c > 0 && start < spans[e][c - 1]) {
                throw new IllegalArgumentException("span: [" + start + ", " + end + ") of sequence " + sequence
                        + ", kv head " + kvHead + " starts before the previous span ends at " + spans[e][c - 1]);
            }
            if (c > 0 && start == spans[e][c - 1]) {
                spans[e][c - 1] = end;
                return this;
            }
            if (c + 2 > spans[e].length) {
                spans[e] = Arrays.copyOf(spans[e], Math.max(8, spans[e].length * 2));
            }
            spans[e][c] = start;
            spans[e][c + 1] = end;
            counts[e] = c + 2;
            return this;
        }

        /**
         * Adds the ascending, distinct keys {@code keys[from .. to)} to (sequence, head), as runs.
         *
         * @throws IllegalArgumentException as {@link #span}, or if the keys are not ascending
         */
        public Builder keys(int sequence, int kvHead, int[] keys, int from, int to) {
            int i = from;
            while (i < to) {
                int j = i + 1;
                while (j < to && keys[j] == keys[j - 1] + 1) {
                    j++;
                }
                span(sequence, kvHead, keys[i], keys[j - 1] + 1);
                i = j;
            }
            return this;
        }

        /** A short name for the selection. */
        public Builder describe(String text) {
            this.description = text == null ? "custom" : text;
            return this;
        }

        /** The selection. */
        public DecodeSelection build() {
            int n = batch * kvHeads;
            int[] offsets = new int[n + 1];
            for (int e = 0; e < n; e++) {
                offsets[e + 1] = offsets[e] + counts[e] / 2;
            }
            int[] starts = new int[offsets[n]];
            int[] ends = new int[offsets[n]];
            for (int e = 0; e < n; e++) {
                for (int i = 0, at = offsets[e]; i < counts[e]; i += 2, at++) {
                    starts[at] = spans[e][i];
                    ends[at] = spans[e][i + 1];
                }
            }
            return new DecodeSelection(batch, kvHeads, madeAt.clone(), dense.clone(), sinks.clone(), window.clone(),
                    offsets, starts, ends, description);
        }
    }
}
