package dev.sparsa.kv;

import dev.sparsa.spec.Workers;
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
        return select(q, cache, pattern, scorer, Workers.callerOnly());
    }

    /**
     * As {@link #select(Tensor, KvCache, DecodePattern, DecodeScorer)}, choosing for the (sequence, KV
     * head) pairs on {@code workers} (possibly in parallel: the scorer is then called from several
     * threads, for distinct pairs). The result does not depend on the order or the thread count.
     *
     * @throws java.util.concurrent.CancellationException if a worker was interrupted before every pair
     *     was chosen
     */
    public static DecodeSelection select(Tensor q, KvCache cache, DecodePattern pattern, DecodeScorer scorer,
                                         Workers workers) {
        if (workers == null) {
            throw new IllegalArgumentException("workers: must not be null");
        }
        check(q, cache, pattern);
        int rows = q.seqLen();
        int[] lengths = cache.lengths();
        int heads = cache.kvHeads();
        int[][] chosen = new int[cache.batch() * heads][];
        workers.forEach(chosen.length, u -> {
            int b = u / heads;
            int g = u % heads;
            DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
            chosen[u] = switch (p) {
                case DecodePattern.Quest quest -> chooseQuest((PagedKvCache) cache, b, g, lengths[b], quest, scorer);
                case DecodePattern.TopK top -> chooseTopK(b, g, lengths[b], rows, top, scorer);
                default -> null;
            };
        });
        DecodeSelection.Builder sel = DecodeSelection.builder(cache.batch(), heads, lengths).describe(pattern.name());
        for (int b = 0; b < cache.batch(); b++) {
            for (int g = 0; g < heads; g++) {
                DecodePattern p = pattern instanceof DecodePattern.PerKvHead per ? per.head(g) : pattern;
                switch (p) {
                    case DecodePattern.Dense d -> sel.dense(b, g);
                    case DecodePattern.SinkWindow sw -> sel.forced(b, g, sw.sinks(), sw.window());
                    case DecodePattern.Quest quest -> sel.forced(b, g, quest.sinks(), quest.window());
                    case DecodePattern.TopK top -> sel.forced(b, g, top.sinks(), top.window());
                    case DecodePattern.PerKvHead nested -> throw new IllegalArgumentException("pattern: nested per-head");
                }
                int[] spans = chosen[b * heads + g];
                for (int i = 0; spans != null && i < spans.length; i += 2) {
                    sel.span(b, g, spans[i], spans[i + 1]);
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

    /** Quest's chosen spans {@code [s0, e0, s1, e1, …]}, ascending. */
    private static int[] chooseQuest(PagedKvCache cache, int b, int g, int length, DecodePattern.Quest quest,
                                     DecodeScorer scorer) {
        int pageSize = cache.pageSize();
        int pages = (length + pageSize - 1) / pageSize;
        int budget = quest.pageBudget(pageSize);
        if (pages <= budget) {
            return length > 0 ? new int[] {0, length} : new int[0];
        }
        int candidates = pages - 1;
        float[] bound = new float[candidates];
        scorer.questBounds(b, g, cache.blockTable(b), candidates, bound);
        int[] chosen = best(bound, candidates, budget - 1);
        int[] spans = new int[2 * chosen.length + 2];
        for (int i = 0; i < chosen.length; i++) {
            spans[2 * i] = chosen[i] * pageSize;
            spans[2 * i + 1] = (chosen[i] + 1) * pageSize;
        }
        spans[2 * chosen.length] = candidates * pageSize;
        spans[2 * chosen.length + 1] = length;
        return spans;
    }

    /** Top-k's chosen spans (runs of chosen keys), ascending. */
    private static int[] chooseTopK(int b, int g, int length, int rows, DecodePattern.TopK top, DecodeScorer scorer) {
        int from = Math.min(top.sinks(), length);
        int to = top.window() > 0 ? (int) Math.max(0, Math.min(length, (long) length - rows - top.window() + 1)) : length;
        if (to <= from || top.tokens() == 0) {
            return new int[0];
        }
        int n = to - from;
        if (n <= top.tokens()) {
            return new int[] {from, to};
        }
        float[] score = new float[n];
        scorer.keyScores(b, g, from, to, score);
        int[] chosen = best(score, n, top.tokens());
        int[] spans = new int[2 * chosen.length];
        int c = 0;
        for (int i = 0; i < chosen.length; i++) {
            int key = chosen[i] + from;
            if (c > 0 && spans[c - 1] == key) {
                spans[c - 1] = key + 1;
            } else {
                spans[c++] = key;
                spans[c++] = key + 1;
            }
        }
        return java.util.Arrays.copyOf(spans, c);
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
        if (k <= 0) {
            return new int[0];
        }
        int[] keyed = new int[n];
        for (int i = 0; i < n; i++) {
            float s = score[i];
            keyed[i] = Float.isNaN(s) ? Integer.MIN_VALUE : order(s);
        }
        // the k-th largest key by selection (expected linear time), then the keys above it and the
        // lowest-indexed of those equal to it
        int[] work = keyed.clone();
        int threshold = kthLargest(work, k);
        int above = 0;
        for (int i = 0; i < n; i++) {
            if (keyed[i] > threshold) {
                above++;
            }
        }
        int ties = k - above;
        int[] out = new int[k];
        int c = 0;
        for (int i = 0; i < n; i++) {
            if (keyed[i] > threshold || (keyed[i] == threshold && ties-- > 0)) {
                out[c++] = i;
            }
        }
        return out;
    }

    /** The k-th largest of {@code a} (1-based), reordering {@code a}: Hoare selection with median-of-three pivots. */
    private static int kthLargest(int[] a, int k) {
        int lo = 0;
        int hi = a.length - 1;
        int target = k - 1; // index in descending order
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            int pivot = median(a[lo], a[mid], a[hi]);
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] > pivot) {
                    i++;
                }
                while (a[j] < pivot) {
                    j--;
                }
                if (i <= j) {
                    int t = a[i];
                    a[i] = a[j];
                    a[j] = t;
                    i++;
                    j--;
                }
            }
            if (target <= j) {
                hi = j;
            } else if (target >= i) {
                lo = i;
            } else {
                return a[target];
            }
        }
        return a[target];
    }

    private static int median(int a, int b, int c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
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
