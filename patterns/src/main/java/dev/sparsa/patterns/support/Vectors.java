package dev.sparsa.patterns.support;

import dev.sparsa.tensor.Tensor;

/**
 * Row access and small dense helpers for estimators (f32 copies of one head; O(seq · dim)), and the
 * scans their selections run over score rows (ranges, NaN-skipping maxima, counts at a threshold,
 * bit sets and splits), in the Vector API where it is readable ({@link ScoringProvider}).
 */
public final class Vectors {
    private Vectors() {
    }

    /** The rows of (batch, head) as a flat {@code [seq · dim]} f32 array. */
    public static float[] rows(Tensor t, int batch, int head) {
        int n = t.seqLen();
        int d = t.dim();
        float[] out = new float[n * d];
        for (int s = 0; s < n; s++) {
            t.readRow(batch, head, s, out, s * d);
        }
        return out;
    }

    /**
     * {@link #rows(Tensor, int, int)} into {@code reuse} when it has room for them (a new array
     * otherwise); returns the array written.
     */
    public static float[] rows(Tensor t, int batch, int head, float[] reuse) {
        int n = t.seqLen();
        int d = t.dim();
        float[] out = reuse != null && reuse.length >= (long) n * d ? reuse : new float[n * d];
        for (int s = 0; s < n; s++) {
            t.readRow(batch, head, s, out, s * d);
        }
        return out;
    }

    /** Rows {@code [from, to)} of (batch, head) as a flat {@code [(to − from) · dim]} f32 array. */
    public static float[] rows(Tensor t, int batch, int head, int from, int to) {
        int d = t.dim();
        float[] out = new float[(to - from) * d];
        for (int s = from; s < to; s++) {
            t.readRow(batch, head, s, out, (s - from) * d);
        }
        return out;
    }

    /**
     * Dot product of row {@code i} of {@code a} and row {@code j} of {@code b}, both of width {@code d}:
     * one chain of fused multiply-adds over the channels in order. This fixed order is the
     * definition the vectorised {@link KeyPanels} reproduce bitwise.
     */
    public static float dot(float[] a, int i, float[] b, int j, int d) {
        float s = 0;
        int ai = i * d;
        int bj = j * d;
        for (int x = 0; x < d; x++) {
            s = Math.fma(a[ai + x], b[bj + x], s);
        }
        return s;
    }

    /**
     * Means of consecutive groups of {@code size} rows, {@code [ceil(n/size) · d]}: each group's sum
     * divided by {@code size}, so a shorter last group counts its missing rows as zeros, as
     * MInference's {@code _build_block_index} and BiFormer's routing do on their zero-padded inputs.
     */
    public static float[] meanPool(float[] rows, int n, int d, int size) {
        int groups = Checks.groups(n, size);
        float[] out = new float[groups * d];
        for (int g = 0; g < groups; g++) {
            int r0 = (int) ((long) g * size);
            int r1 = Checks.groupEnd(g, size, n);
            for (int r = r0; r < r1; r++) {
                for (int x = 0; x < d; x++) {
                    out[g * d + x] += rows[r * d + x];
                }
            }
            for (int x = 0; x < d; x++) {
                out[g * d + x] /= size;
            }
        }
        return out;
    }

    /**
     * {@link #meanPool(float[], int, int, int)} of the rows of (batch, head), read from the tensor a
     * few rows at a time (no copy of the whole head): same sums in the same order, so bitwise the
     * same result.
     */
    public static float[] meanPool(Tensor t, int batch, int head, int size) {
        int n = t.seqLen();
        int d = t.dim();
        int groups = Checks.groups(n, size);
        float[] out = new float[groups * d];
        // a few rows at a time, added to the group's sums with each lane's sum in a register
        int chunk = Math.max(1, Math.min(POOL_ROWS, n));
        float[] rows = new float[chunk * d];
        for (int g = 0; g < groups; g++) {
            int r0 = (int) ((long) g * size);
            int r1 = Checks.groupEnd(g, size, n);
            for (int r = r0; r < r1; r += chunk) {
                int m = Math.min(chunk, r1 - r);
                for (int j = 0; j < m; j++) {
                    t.readRow(batch, head, r + j, rows, j * d);
                }
                SCANS.addRows(rows, 0, m, d, out, g * d);
            }
            for (int x = 0; x < d; x++) {
                out[g * d + x] /= size;
            }
        }
        return out;
    }

    /** The scale to use: {@code scale} when it is a positive number, else {@code 1/sqrt(dim)}. */
    public static double scaleFor(double scale, int dim) {
        return Double.isNaN(scale) ? 1.0 / Math.sqrt(dim) : scale;
    }

    /** @throws IllegalArgumentException unless scale is NaN (default) or finite and &gt; 0 */
    public static double checkScale(double scale) {
        if (!Double.isNaN(scale) && !(scale > 0 && Double.isFinite(scale))) {
            throw new IllegalArgumentException("scale: must be NaN (1/sqrt(headDim)) or finite and > 0, got " + scale);
        }
        return scale;
    }

    private static final ScoringSupport SCANS = ScoringProvider.get();
    /** Rows read from the tensor per step of {@link #meanPool(Tensor, int, int, int)} (16 KB at d = 64, 32 KB at 128). */
    private static final int POOL_ROWS = 64;

    /** {@code a[i] = CanonicalExp.exp(a[i] − max)} for {@code i < n}, bit for bit (on vector lanes when the Vector API is there). */
    public static void expMinus(float[] a, int n, float max) {
        SCANS.expMinus(a, n, max);
    }

    /** The largest of {@code a[from, from + n)} that is not NaN ({@code −∞} if none). */
    public static float maxSkippingNaN(float[] a, int from, int n) {
        return SCANS.maxSkippingNaN(a, from, n);
    }

    /**
     * {@code acc[accAt + i] = Math.fma(w, Math.max(0, dots[dotsAt + i]), acc[accAt + i])} for {@code i
     * < n}: a weighted ReLU added to a running sum, element by element (so bitwise the same in either
     * implementation).
     */
    public static void addWeightedRelu(float w, float[] dots, int dotsAt, float[] acc, int accAt, int n) {
        SCANS.addWeightedRelu(w, dots, dotsAt, acc, accAt, n);
    }

    /** The smallest and largest of some floats that are not NaN, and how many are not NaN. */
    public record Range(float min, float max, int count) {
    }

    /**
     * The smallest and largest non-NaN of {@code a[from, from + n)} and how many are not NaN, in one
     * pass ({@code +∞}, {@code −∞} and 0 if every one is NaN).
     */
    public static Range range(float[] a, int from, int n) {
        return SCANS.range(a, from, n);
    }

    /** How many of {@code a[from, from + n)} are {@code >= t} (NaN never is). */
    public static int countAtLeast(float[] a, int from, int n, float t) {
        return SCANS.countAtLeast(a, from, n, t);
    }

    /**
     * Writes the scores {@code a[from + i] >= t}, {@code i < n}, to {@code vals} and their indices
     * {@code i} to {@code idx}, ascending, and returns how many; both arrays need room for {@code n
     * + }{@link #compressSlack()} entries (entries past the count are undefined).
     */
    public static int compressAtLeast(float[] a, int from, int n, float t, float[] vals, int[] idx) {
        return SCANS.compressAtLeast(a, from, n, t, vals, idx);
    }

    /**
     * Of {@code c} candidates ({@code k <= c <= 64}; scores {@code vals[0, c)}, none NaN, and their
     * indices {@code idx[0, c)}), writes the indices of the {@code k} best (larger first, ties to
     * the earlier candidate, {@code -0} equal to {@code +0}) to {@code out[at, at + k)} in candidate
     * order and returns the smallest score. Both arrays need room for {@code c + }{@link
     * #compressSlack()}.
     */
    public static float keepBest(float[] vals, int[] idx, int c, int k, int g, int[] out, int at) {
        return SCANS.keepBest(vals, idx, c, k, g, out, at);
    }

    /** The room {@link #compressAtLeast} needs past {@code n}. */
    public static int compressSlack() {
        return SCANS.panelLanes();
    }

    /**
     * Sets bit {@code i} of {@code bits} (bit {@code i % 64} of word {@code i / 64}) for each {@code
     * a[from + i] >= t}, {@code i < n}; the bits of {@code [0, n)} are overwritten.
     */
    public static void bitsAtLeast(float[] a, int from, int n, float t, long[] bits) {
        SCANS.bitsAtLeast(a, from, n, t, bits);
    }

    /**
     * One pass that splits {@code a[from, from + n)} at two thresholds {@code lo <= hi}: sets bit
     * {@code i} of {@code above} for each {@code a[from + i] >= hi} (the bits of {@code [0, n)} are
     * overwritten), writes to {@code inside} the indices {@code i} with {@code lo <= a[from + i] < hi},
     * ascending, and returns how many ({@code inside} must have room for them).
     */
    public static int split(float[] a, int from, int n, float lo, float hi, long[] above, int[] inside) {
        return SCANS.split(a, from, n, lo, hi, above, inside);
    }
}
