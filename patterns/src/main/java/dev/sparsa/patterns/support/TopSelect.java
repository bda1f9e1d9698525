package dev.sparsa.patterns.support;

/**
 * Deterministic top-k over float scores: larger scores first, ties to the lower index; candidates
 * are the indices in {@code [0, n)} a filter admits. O(n log k) with a binary heap, no boxing.
 */
public final class TopSelect {
    private TopSelect() {
    }

    /** Index filter. */
    @FunctionalInterface
    public interface Admit {
        boolean test(int index);
    }

    /**
     * The (at most) {@code k} best admitted indices of {@code scores[0..n)}, ascending by index.
     * NaN scores are never selected.
     */
    public static int[] top(float[] scores, int n, int k, Admit admit) {
        if (k <= 0) {
            return new int[0];
        }
        int[] heap = new int[Math.min(k, n)];
        int size = 0;
        for (int i = 0; i < n; i++) {
            if ((admit != null && !admit.test(i)) || Float.isNaN(scores[i])) {
                continue;
            }
            if (size < heap.length) {
                heap[size] = i;
                siftUp(heap, size++, scores);
            } else if (size > 0 && better(i, heap[0], scores)) {
                heap[0] = i;
                siftDown(heap, size, scores);
            }
        }
        int[] out = java.util.Arrays.copyOf(heap, size);
        java.util.Arrays.sort(out);
        return out;
    }

    /** True when index a ranks before index b: higher score, or equal score and lower index. */
    public static boolean better(int a, int b, float[] s) {
        return s[a] > s[b] || (s[a] == s[b] && a < b);
    }

    // min-heap on rank: the root is the worst kept index
    private static void siftUp(int[] h, int i, float[] s) {
        while (i > 0) {
            int p = (i - 1) >>> 1;
            if (better(h[p], h[i], s)) {
                int t = h[p];
                h[p] = h[i];
                h[i] = t;
                i = p;
            } else {
                break;
            }
        }
    }

    private static void siftDown(int[] h, int n, float[] s) {
        int i = 0;
        while (true) {
            int l = 2 * i + 1;
            int r = l + 1;
            int w = i;
            if (l < n && better(h[w], h[l], s)) {
                w = l;
            }
            if (r < n && better(h[w], h[r], s)) {
                w = r;
            }
            if (w == i) {
                return;
            }
            int t = h[w];
            h[w] = h[i];
            h[i] = t;
            i = w;
        }
    }
}
