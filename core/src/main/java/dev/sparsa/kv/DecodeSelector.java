package dev.sparsa.kv;

import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * Plans a {@link DecodePattern} into a {@link DecodeSelection} for one call: the rules of each
 * pattern in one place, on scores from a {@link DecodeScorer}. Backends call {@link #select(Tensor,
 * KvCache, DecodePattern, DecodeScorer)} with their own scorer; {@link #plainScorer} computes the
 * scores in plain Java on host copies (the reference, and the default for backends without one).
 *
 * <p>Rules, for a sequence of length {@code L} when selecting and a step of {@code rows} rows:
 * <ul>
 *   <li>Quest: {@code P = pageSize}, {@code n = ⌈L / P⌉} pages, budget {@code m =
 *       pattern.pageBudget(P)}. If {@code n ≤ m}, every key is chosen; else the last page and the
 *       {@code m − 1} best pages among the others by bound (ties to the lower page). As Quest's
 *       serving code: the page being filled is always attended, the others compete.
 *   <li>Top-k: the candidates are the keys outside the sinks {@code [0, sinks)} and outside the
 *       step's window {@code [L − rows − window + 1, L)}; the {@code tokens} best by score (ties to
 *       the lower position), or all candidates when there are fewer.
 *   <li>Sink + window, dense: no choice; the selection records the rule.
 * </ul>
 */
public final class DecodeSelector {
    private DecodeSelector() {
    }

    /**
     * The selection with scores from {@link #plainScorer}.
     *
     * @throws IllegalArgumentException as {@link #select(Tensor, KvCache, DecodePattern, DecodeScorer)}
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern) {
        check(q, cache, pattern);
        return select(q, cache, pattern, pattern.dataDependent() ? plainScorer(q, cache) : null);
    }

    /**
     * The selection for Q {@code [batch, qHeads, rows, headDim]} on {@code cache}, with scores from
     * {@code scorer} (unused, and may be null, for static patterns).
     *
     * @throws IllegalArgumentException if Q does not fit the cache, a per-head pattern does not have
     *     one entry per KV head, or Quest runs on a cache without page bounds
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeScorer scorer) {
        check(q, cache, pattern);
        int rows = q.seqLen();
        int[] lengths = cache.lengths();
        DecodeSelection.Builder sel = DecodeSelection.builder(cache.batch(), cache.kvHeads(), lengths)
                .describe(pattern.name());
        for (int b = 0; b < cache.batch(); b++) {
            for (int g = 0; g < cache.kvHeads(); g++) {
                DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
                switch (p) {
                    case DecodePattern.Dense d -> sel.dense(b, g);
                    case DecodePattern.SinkWindow sw -> sel.forced(b, g, sw.sinks(), sw.window());
                    case DecodePattern.Quest quest -> {
                        sel.forced(b, g, quest.sinks(), quest.window());
                        chooseQuest((PagedKvCache) cache, b, g, lengths[b], quest, scorer, sel);
                    }
                    case DecodePattern.TopK top -> {
                        sel.forced(b, g, top.sinks(), top.window());
                        chooseTopK(b, g, lengths[b], rows, top, scorer, sel);
                    }
                    case DecodePattern.PerKvHead nested -> throw new IllegalArgumentException("pattern: nested per-head");
                }
            }
        }
        return sel.build();
    }

    private static void check(Tensor q, KvCache cache, DecodePattern pattern) {
        if (q == null || cache == null || pattern == null) {
            throw new IllegalArgumentException("q, cache and pattern: must not be null");
        }
        if (q.batch() != cache.batch() || q.heads() % cache.kvHeads() != 0 || q.dim() != cache.headDim()) {
            throw new IllegalArgumentException("q: shape " + Arrays.toString(q.shape()) + " does not fit the cache's "
                    + cache.batch() + " sequences, " + cache.kvHeads() + " KV heads, head dim " + cache.headDim());
        }
        if (pattern instanceof DecodePattern.PerKvHead per && per.heads().size() != cache.kvHeads()) {
            throw new IllegalArgumentException("pattern: " + per.heads().size() + " per-head patterns for "
                    + cache.kvHeads() + " KV heads");
        }
        if (usesQuest(pattern) && !(cache instanceof PagedKvCache pc && pc.hasPageBounds())) {
            throw new IllegalArgumentException("pattern: " + pattern.name()
                    + " ranks pages by their key bounds; it needs a PagedKvCache made with page bounds");
        }
    }

    private static boolean usesQuest(DecodePattern p) {
        return p instanceof DecodePattern.Quest
                || (p instanceof DecodePattern.PerKvHead per && per.heads().stream().anyMatch(DecodeSelector::usesQuest));
    }

    private static void chooseQuest(PagedKvCache cache, int b, int g, int length, DecodePattern.Quest quest,
                                    DecodeScorer scorer, DecodeSelection.Builder sel) {
        int pageSize = cache.pageSize();
        int pages = (length + pageSize - 1) / pageSize;
        int budget = quest.pageBudget(pageSize);
        if (pages <= budget) {
            if (length > 0) {
                sel.span(b, g, 0, length);
            }
            return;
        }
        int candidates = pages - 1;
        int[] table = cache.blockTable(b);
        float[] bound = new float[candidates];
        scorer.questBounds(b, g, table, candidates, bound);
        int[] chosen = best(bound, candidates, budget - 1);
        for (int pg : chosen) {
            sel.span(b, g, pg * pageSize, (pg + 1) * pageSize);
        }
        sel.span(b, g, candidates * pageSize, length);
    }

    private static void chooseTopK(int b, int g, int length, int rows, DecodePattern.TopK top, DecodeScorer scorer,
                                   DecodeSelection.Builder sel) {
        int from = Math.min(top.sinks(), length);
        int to = top.window() > 0 ? (int) Math.max(0, Math.min(length, (long) length - rows - top.window() + 1)) : length;
        if (to <= from || top.tokens() == 0) {
            return;
        }
        int n = to - from;
        if (n <= top.tokens()) {
            sel.span(b, g, from, to);
            return;
        }
        float[] score = new float[n];
        scorer.keyScores(b, g, from, to, score);
        int[] chosen = best(score, n, top.tokens());
        for (int i = 0; i < chosen.length; i++) {
            chosen[i] += from;
        }
        sel.keys(b, g, chosen, 0, chosen.length);
    }

    /**
     * The indices of the {@code k} highest of {@code score[0 .. n)}, ascending; ties go to the lower
     * index and NaN ranks below every number.
     */
    public static int[] best(float[] score, int n, int k) {
        if (k >= n) {
            int[] all = new int[n];
            Arrays.setAll(all, i -> i);
            return all;
        }
        long[] keyed = new long[n];
        for (int i = 0; i < n; i++) {
            float s = score[i];
            int bits = Float.isNaN(s) ? Integer.MIN_VALUE : order(s);
            // ascending sort of (−score, index): the best first, lower index first among equals
            keyed[i] = ((long) ~bits << 32) | i;
        }
        Arrays.sort(keyed);
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = (int) keyed[i];
        }
        Arrays.sort(out);
        return out;
    }

    /** A signed int with the order of the floats (−0 and 0 equal). */
    private static int order(float s) {
        int bits = Float.floatToIntBits(s == 0f ? 0f : s);
        return bits >= 0 ? bits : bits ^ 0x7FFFFFFF;
    }

    /**
     * Scores in plain Java (f32, channel order) from host copies of Q and of the cache's keys and
     * bounds: the definitions of {@link DecodeScorer}.
     */
    public static DecodeScorer plainScorer(Tensor q, KvCache cache) {
        Tensor qh = q.toHost();
        int group = q.heads() / cache.kvHeads();
        int rows = q.seqLen();
        int dim = cache.headDim();
        Tensor bounds = cache instanceof PagedKvCache pc && pc.hasPageBounds() ? pc.pageBounds().toHost() : null;
        return new DecodeScorer() {
            private float[] vectors(int b, int g) {
                float[] v = new float[group * rows * dim];
                for (int h = 0; h < group; h++) {
                    for (int r = 0; r < rows; r++) {
                        qh.readRow(b, g * group + h, r, v, (h * rows + r) * dim);
                    }
                }
                return v;
            }

            @Override
            public void questBounds(int b, int g, int[] pages, int count, float[] out) {
                float[] v = vectors(b, g);
                float[] min = new float[dim];
                float[] max = new float[dim];
                for (int i = 0; i < count; i++) {
                    bounds.readRow(pages[i], g, 0, min, 0);
                    bounds.readRow(pages[i], g, 1, max, 0);
                    float best = Float.NEGATIVE_INFINITY;
                    for (int x = 0; x < group * rows; x++) {
                        float s = 0f;
                        for (int c = 0; c < dim; c++) {
                            float qc = v[x * dim + c];
                            s += Math.max(qc * min[c], qc * max[c]);
                        }
                        best = Math.max(best, s);
                    }
                    out[i] = best;
                }
            }

            @Override
            public void keyScores(int b, int g, int from, int to, float[] out) {
                float[] v = vectors(b, g);
                Tensor keys = cache.keys(b).toHost();
                float[] k = new float[dim];
                for (int key = from; key < to; key++) {
                    keys.readRow(0, g, key, k, 0);
                    float best = Float.NEGATIVE_INFINITY;
                    for (int x = 0; x < group * rows; x++) {
                        float s = 0f;
                        for (int c = 0; c < dim; c++) {
                            s += v[x * dim + c] * k[c];
                        }
                        best = Math.max(best, s);
                    }
                    out[key - from] = best;
                }
            }
        };
    }
}
