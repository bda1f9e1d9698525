package dev.sparsa.patterns.support;

/**
 * The estimators' loops in plain Java: the twin of the Vector API implementation, used where {@code
 * jdk.incubator.vector} is not readable. Every result is bitwise the Vector API's (dot products are
 * one chain of fused multiply-adds over the channels in order; scans compare and count).
 */
final class ScalarScoringSupport implements ScoringSupport {
    /** Keys per panel: any width gives the same scores; eight keeps the panels small. */
    private static final int L = 8;
    /** Directions per hash group (one byte of a hash). */
    private static final int LANES = 8;

    @Override
    public String description() {
        return "plain Java";
    }

    @Override
    public int panelLanes() {
        return L;
    }

    @Override
    public void transposePanel(float[] rows, int d, float[] p, int base) {
        for (int x = 0; x < d; x++) {
            for (int j = 0; j < L; j++) {
                p[base + x * L + j] = rows[j * d + x];
            }
        }
    }

    @Override
    public void normalizePanel(float[] p, int base, int d, double[] inv) {
        for (int j = 0; j < L; j++) {
            double s = 0;
            for (int x = 0; x < d; x++) {
                s += (double) p[base + x * L + j] * p[base + x * L + j];
            }
            inv[j] = s > 0 ? 1.0 / Math.sqrt(s) : 0;
        }
        for (int x = 0; x < d; x++) {
            for (int j = 0; j < L; j++) {
                p[base + x * L + j] = (float) (p[base + x * L + j] * inv[j]);
            }
        }
    }

    @Override
    public void scaleRows(float[] src, int rows, int d, double[] inv, float[] dst, int dstOff) {
        for (int j = 0; j < rows; j++) {
            for (int x = 0; x < d; x++) {
                dst[dstOff + j * d + x] = (float) (src[j * d + x] * inv[j]);
            }
        }
    }

    @Override
    public void keepGreater(float[] a, int from, int n, float[] best, int[] arg, int index) {
        for (int i = 0; i < n; i++) {
            if (a[from + i] > best[i]) {
                best[i] = a[from + i];
                arg[i] = index;
            }
        }
    }

    @Override
    public void untransposePanel(float[] p, int base, int d, float[] rows, int at) {
        for (int j = 0; j < L; j++) {
            for (int x = 0; x < d; x++) {
                rows[at + j * d + x] = p[base + x * L + j];
            }
        }
    }

    @Override
    public void addWeightedRelu(float w, float[] dots, int dotsAt, float[] acc, int accAt, int n) {
        for (int i = 0; i < n; i++) {
            acc[accAt + i] = Math.fma(w, Math.max(0f, dots[dotsAt + i]), acc[accAt + i]);
        }
    }

    @Override
    public void expMinus(float[] a, int n, float max) {
        for (int i = 0; i < n; i++) {
            a[i] = CanonicalExp.exp(a[i] - max);
        }
    }

    @Override
    public void addRows(float[] src, int srcOff, int rows, int d, float[] dst, int dstOff) {
        for (int r = 0; r < rows; r++) {
            for (int x = 0; x < d; x++) {
                dst[dstOff + x] += src[srcOff + r * d + x];
            }
        }
    }

    @Override
    public void fourByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        for (int j = 0; j < 4; j++) {
            oneByTwo(panels, d, q, row + j, g, out, outBase + j * stride);
        }
    }

    @Override
    public void fourByFour(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        for (int j = 0; j < 4; j++) {
            oneByTwo(panels, d, q, row + j, g, out, outBase + j * stride);
            oneByTwo(panels, d, q, row + j, g + 2, out, outBase + j * stride);
        }
    }

    @Override
    public void oneByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase) {
        oneByOne(panels, d, q, row, g, out, outBase);
        oneByOne(panels, d, q, row, g + 1, out, outBase);
    }

    @Override
    public void eightByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride) {
        for (int j = 0; j < 8; j++) {
            oneByOne(panels, d, q, row + j, g, out, outBase + j * stride);
        }
    }

    @Override
    public void oneByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase) {
        int p0 = g * L * d;
        int qa = row * d;
        for (int j = 0; j < L; j++) {
            float s = 0f;
            for (int x = 0; x < d; x++) {
                s = Math.fma(panels[p0 + x * L + j], q[qa + x], s);
            }
            out[outBase + g * L + j] = s;
        }
    }

    @Override
    public void boundsFourByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase,
                                int stride) {
        for (int j = 0; j < 4; j++) {
            boundsOneByOne(min, max, d, q, row + j, g, out, outBase + j * stride);
        }
    }

    @Override
    public void boundsOneByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase) {
        int p0 = g * L * d;
        int qa = row * d;
        for (int i = 0; i < L; i++) {
            float s = 0f;
            for (int x = 0; x < d; x++) {
                float qc = q[qa + x];
                s += Math.max(qc * min[p0 + x * L + i], qc * max[p0 + x * L + i]);
            }
            out[outBase + g * L + i] = s;
        }
    }

    @Override
    public void hashSixRows(float[] rows, int r, int dim, float[] pair, int[] out0, int shift0, int[] out1, int shift1,
                            int at) {
        for (int i = 0; i < 6; i++) {
            out0[at + r + i] |= hashByte(rows, (r + i) * dim, dim, pair, 2 * LANES, 0) << shift0;
            out1[at + r + i] |= hashByte(rows, (r + i) * dim, dim, pair, 2 * LANES, LANES) << shift1;
        }
    }

    @Override
    public void hashEightRows(float[] rows, int r, int dim, float[] dirT, int[] out, int shift, int at) {
        for (int i = 0; i < 8; i++) {
            out[at + r + i] |= hashByte(rows, (r + i) * dim, dim, dirT, LANES, 0) << shift;
        }
    }

    @Override
    public int hashOneRow(float[] rows, int off, int dim, float[] dirT) {
        return hashByte(rows, off, dim, dirT, LANES, 0);
    }

    /** Bit {@code lane} set when {@code Σ_x rows[off + x]·dirs[x · width + first + lane] > 0} (one FMA chain). */
    private static int hashByte(float[] rows, int off, int dim, float[] dirs, int width, int first) {
        int b = 0;
        for (int lane = 0; lane < LANES; lane++) {
            float s = 0f;
            for (int x = 0; x < dim; x++) {
                s = Math.fma(rows[off + x], dirs[x * width + first + lane], s);
            }
            b |= s > 0 ? 1 << lane : 0;
        }
        return b;
    }

    @Override
    public float maxSkippingNaN(float[] a, int from, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            float v = a[from + i];
            m = v > m ? v : m;
        }
        return m;
    }

    @Override
    public float maxIfFinite(float[] a, int from, int n) {
        float max = Float.NEGATIVE_INFINITY;
        float nonFinite = 0f;
        for (int i = 0; i < n; i++) {
            float v = a[from + i];
            max = Math.max(max, v);
            nonFinite += v - v;
        }
        return nonFinite == 0f ? max : Float.NaN;
    }

    @Override
    public Vectors.Range range(float[] a, int from, int n) {
        float min = Float.POSITIVE_INFINITY;
        float max = Float.NEGATIVE_INFINITY;
        int count = 0;
        for (int i = 0; i < n; i++) {
            float v = a[from + i];
            min = v < min ? v : min;
            max = v > max ? v : max;
            count += v == v ? 1 : 0;
        }
        return new Vectors.Range(min, max, count);
    }

    @Override
    public int countAtLeast(float[] a, int from, int n, float t) {
        int count = 0;
        for (int i = 0; i < n; i++) {
            count += a[from + i] >= t ? 1 : 0;
        }
        return count;
    }

    @Override
    public int compressAtLeast(float[] a, int from, int n, float t, float[] vals, int[] idx) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            float v = a[from + i];
            if (v >= t) {
                vals[m] = v;
                idx[m++] = i;
            }
        }
        return m;
    }

    @Override
    public float keepBest(float[] vals, int[] idx, int c, int k, int g, int[] out, int at) {
        long keep = c == 64 ? -1L : (1L << c) - 1;
        float gth = Float.POSITIVE_INFINITY;
        for (int q = 0; q < c - k; q++) {
            if (q == c - g) {
                gth = lowestKept(vals, keep, c);
            }
            // the worst kept: the lowest score, the last of equal ones
            int w = -1;
            for (int j = 0; j < c; j++) {
                if ((keep >>> j & 1) != 0 && (w < 0 || vals[j] <= vals[w])) {
                    w = j;
                }
            }
            keep &= ~(1L << w);
        }
        if (g == k) {
            gth = lowestKept(vals, keep, c);
        }
        for (int r = at; keep != 0; keep &= keep - 1) {
            out[r++] = idx[Long.numberOfTrailingZeros(keep)];
        }
        return gth;
    }

    /** The lowest of the scores {@code vals[j]}, {@code j < c}, whose bit is set in {@code keep}. */
    private static float lowestKept(float[] vals, long keep, int c) {
        float min = Float.POSITIVE_INFINITY;
        for (int j = 0; j < c; j++) {
            if ((keep >>> j & 1) != 0) {
                min = Math.min(min, vals[j]);
            }
        }
        return min;
    }

    @Override
    public void bitsAtLeast(float[] a, int from, int n, float t, long[] bits) {
        for (int i = 0; i < n; i++) {
            long bit = 1L << i;
            bits[i >>> 6] = a[from + i] >= t ? bits[i >>> 6] | bit : bits[i >>> 6] & ~bit;
        }
    }

    @Override
    public int split(float[] a, int from, int n, float lo, float hi, long[] above, int[] inside) {
        int m = 0;
        for (int i = 0; i < n; i++) {
            float v = a[from + i];
            long bit = 1L << i;
            above[i >>> 6] = v >= hi ? above[i >>> 6] | bit : above[i >>> 6] & ~bit;
            if (v >= lo && v < hi) {
                inside[m++] = i;
            }
        }
        return m;
    }
}
