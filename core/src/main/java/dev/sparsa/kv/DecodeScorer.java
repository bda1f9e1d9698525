package dev.sparsa.kv;

/**
 * The scores a data-dependent {@link DecodePattern} ranks by, for one decode call (it holds that
 * call's Q and cache). {@link DecodeSelector} turns them into a {@link DecodeSelection}; backends
 * supply faster implementations of the same definitions ({@link DecodeSelector#plainScorer} is the
 * plain-Java one). Scores are f32; a query vector is one (query head of the KV group, step row).
 */
public interface DecodeScorer {

    /**
     * Quest's bound for {@code count} pages of KV head {@code kvHead}: {@code out[i] = max over the
     * group's query vectors q of Σ_c max(q_c·min_c, q_c·max_c)}, with {@code min}/{@code max} the
     * bounds the cache keeps for pool page {@code pages[i]}.
     */
    void questBounds(int sequence, int kvHead, int[] pages, int count, float[] out);

    /**
     * {@link #questBounds(int, int, int[], int, float[])} for several KV heads of one sequence over the
     * same pages: {@code out[i][k]} is the bound of pool page {@code pages[k]} for KV head {@code
     * kvHeads[i]}, for {@code from ≤ k < to} (nothing else of {@code out} is written). Each bound has
     * the bits the one-head method gives it, whatever the range it was computed in, so a caller may cut
     * the pages into pieces. The default calls the one-head method per head; a backend overrides it
     * where one read of the bounds can serve every head (a pool whose bounds hold every head's rows of
     * a page together).
     */
    default void questBounds(int sequence, int[] kvHeads, int[] pages, int from, int to, float[][] out) {
        int n = to - from;
        int[] piece = java.util.Arrays.copyOfRange(pages, from, to);
        float[] one = new float[n];
        for (int i = 0; i < kvHeads.length; i++) {
            questBounds(sequence, kvHeads[i], piece, n, one);
            System.arraycopy(one, 0, out[i], from, n);
        }
    }

    /**
     * {@code out[i] = max over the group's query vectors q of q·k} for the keys {@code from + i} of
     * (sequence, kvHead), {@code i < to − from} (unscaled: the scale does not change a ranking).
     */
    void keyScores(int sequence, int kvHead, int from, int to, float[] out);

    /**
     * {@link #keyScores(int, int, int, int, float[])} for several KV heads of one sequence over the
     * same keys: {@code out[i][key − base]} is the score of {@code key} for KV head {@code kvHeads[i]},
     * for {@code from ≤ key < to} ({@code base ≤ from}; nothing else of {@code out} is written). Each
     * score has the bits the one-head method gives it, whatever the range it was computed in, so a
     * caller may cut a range into pieces. The default calls the one-head method per head; a backend
     * overrides it where one read of the keys can serve every head (a paged pool, whose pages hold
     * every head's rows of their keys).
     */
    default void keyScores(int sequence, int[] kvHeads, int from, int to, float[][] out, int base) {
        float[] one = new float[to - from];
        for (int i = 0; i < kvHeads.length; i++) {
            keyScores(sequence, kvHeads[i], from, to, one);
            System.arraycopy(one, 0, out[i], from - base, to - from);
        }
    }
}
