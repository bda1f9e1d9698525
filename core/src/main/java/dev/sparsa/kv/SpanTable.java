package dev.sparsa.kv;

/**
 * Every (sequence, KV head)'s resolved {@link KeySpans} of one decode step in flat arrays, the form a
 * device kernel reads: entry {@code e = sequence · kvHeads + head} owns spans {@code offsets[e] ..
 * offsets[e + 1] − 1}; span {@code i} is keys {@code [starts[i], ends[i])}, admitted for a row at
 * position {@code p} iff {@code 0 ≤ p − k ≤ maxDelta[i]} ({@link KeySpans#UNBANDED} for causality
 * alone). Arrays are shared, not copied: do not modify them.
 */
public record SpanTable(int batch, int kvHeads, int[] offsets, int[] starts, int[] ends, int[] maxDelta) {

    /** Spans in all entries. */
    public int spanCount() {
        return starts.length;
    }

    /** Keys entry (sequence, head) visits. */
    public long keyCount(int sequence, int kvHead) {
        int e = sequence * kvHeads + kvHead;
        long n = 0;
        for (int i = offsets[e]; i < offsets[e + 1]; i++) {
            n += ends[i] - starts[i];
        }
        return n;
    }
}
