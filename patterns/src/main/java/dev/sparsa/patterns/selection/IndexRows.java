package dev.sparsa.patterns.selection;

import dev.sparsa.tensor.IndexTensor;
import java.util.Arrays;

/**
 * Reads caller-supplied index lists ({@link IndexTensor} {@code [batch, heads, rows, width]}, with an
 * optional lengths view {@code [batch, heads, rows, 1]}) one row at a time, validates every value and
 * returns the row's distinct indices in ascending order. Entries past a row's length, and −1
 * anywhere, are padding. Device views are copied to the host once, when constructed.
 *
 * <p>Not thread-safe (one row buffer is reused).
 */
final class IndexRows {
    private final IndexTensor indices;
    private final IndexTensor lengths;
    private final String what;
    private final int limit;
    private final int[] buf;

    /**
     * @param indices the lists (host or device)
     * @param lengths the number of entries to read per row, or null to read all of them
     * @param what    the argument's name in messages
     * @param limit   valid indices are {@code [0, limit)}
     */
    IndexRows(IndexTensor indices, IndexTensor lengths, String what, int limit) {
        this.indices = indices.toHost();
        this.lengths = lengths == null ? null : lengths.toHost();
        this.what = what;
        this.limit = limit;
        this.buf = new int[indices.width()];
    }

    /**
     * The distinct valid indices of row (b, h, r), ascending (a new array).
     *
     * @throws IllegalArgumentException naming the entry when a value is below −1 or at least the
     *     limit, or naming the row when its length is outside {@code [0, width]}
     */
    int[] row(int b, int h, int r) {
        int n = buf.length;
        if (lengths != null) {
            int len = lengths.get(b, h, r, 0);
            if (len < 0 || len > n) {
                throw new IllegalArgumentException("lengths: lengths[" + b + ", " + h + ", " + r + "] = " + len
                        + " outside [0, " + n + "] (the width of " + what + ")");
            }
            n = len;
        }
        indices.readRow(b, h, r, buf, 0);
        int m = 0;
        boolean ascending = true;
        int prev = Integer.MIN_VALUE;
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            int v = buf[i];
            if (v == -1) {
                continue;
            }
            if (v < -1 || v >= limit) {
                throw new IllegalArgumentException(what + ": " + what + "[" + b + ", " + h + ", " + r + ", " + i + "] = "
                        + v + " outside [0, " + limit + ") (-1 marks padding)");
            }
            ascending &= v > prev;
            prev = v;
            out[m++] = v;
        }
        if (!ascending) {
            Arrays.sort(out, 0, m);
            int d = 0;
            for (int i = 0; i < m; i++) {
                if (d == 0 || out[d - 1] != out[i]) {
                    out[d++] = out[i];
                }
            }
            m = d;
        }
        return m == out.length ? out : Arrays.copyOf(out, m);
    }

    /**
     * Checks that a view fits a call: batch equal to the call's, heads one of 1, the KV heads or the
     * query heads, {@code rows} rows and (for lengths) width 1.
     *
     * @throws IllegalArgumentException naming the view and what it should be
     */
    static void checkShape(String what, IndexTensor t, int batch, int qHeads, int kvHeads, int rows, boolean isLengths) {
        if (t.batch() != batch || t.rows() != rows || (t.heads() != 1 && t.heads() != kvHeads && t.heads() != qHeads)
                || (isLengths && t.width() != 1)) {
            throw new IllegalArgumentException(what + ": shape " + Arrays.toString(t.shape()) + " does not fit the call: need ["
                    + batch + ", 1 | " + kvHeads + " (KV heads) | " + qHeads + " (query heads), " + rows + ", "
                    + (isLengths ? "1" : "width") + "]");
        }
    }

    /** The selection head a query head reads: 0 when shared, its KV head when per group, itself when per query head. */
    static int selectionHead(int selHeads, int qHead, int qHeads, int kvHeads) {
        if (selHeads == 1) {
            return 0;
        }
        if (selHeads == qHeads) {
            return qHead;
        }
        return qHead / (qHeads / kvHeads);
    }
}
