package dev.sparsa.reference;

import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Tensor;

/**
 * The fp64 oracle of decode: each sequence's query rows against its keys in a {@link KvCache},
 * row {@code i} of {@code rows} at position {@code L − rows + i}, causal, restricted to a {@link
 * DecodeSelection}'s token rule ({@link DecodeSelection#admits}) when one is given. It reads the
 * cache through {@link KvCache#keys}/{@link KvCache#values} (host copies), so it shares no paging or
 * span code with any kernel. Rows with no admitted key give 0 and −∞.
 */
public final class ReferenceDecode {
    private ReferenceDecode() {
    }

    /**
     * @param q         {@code [batch, qHeads, rows, headDim]}
     * @param selection null for dense decode
     * @return the result for rows {@code 0 .. rows − 1}; its shape's {@code keyLength} is the longest
     *     sequence
     * @throws IllegalArgumentException if Q does not fit the cache
     */
    public static ReferenceResult decode(Tensor q, KvCache cache, DecodeSelection selection, RunOptions options) {
        if (q.batch() != cache.batch() || q.heads() % cache.kvHeads() != 0 || q.dim() != cache.headDim()) {
            throw new IllegalArgumentException("q: shape " + java.util.Arrays.toString(q.shape())
                    + " does not fit " + cache);
        }
        Tensor qh = q.toHost();
        int rows = q.seqLen();
        AttentionShape s = new AttentionShape(q.batch(), q.heads(), cache.kvHeads(), rows, cache.maxLength(),
                cache.headDim(), cache.valueDim());
        double scale = options.scaleFor(s.headDim());
        float cap = options.softCap();
        int dim = s.headDim();
        int dv = s.valueDim();
        double[] out = new double[s.slices() * rows * dv];
        double[] lse = new double[s.slices() * rows];
        double[] magnitude = new double[lse.length];
        double[] qv = new double[dim];
        float[] row = new float[Math.max(dim, dv)];
        for (int b = 0; b < s.batch(); b++) {
            int length = cache.length(b);
            Tensor k = cache.keys(b).toHost();
            Tensor v = cache.values(b).toHost();
            for (int g = 0; g < s.kvHeads(); g++) {
                // the head's keys and values once, widened to double
                double[] keys = new double[length * dim];
                double[] values = new double[length * dv];
                for (int key = 0; key < length; key++) {
                    k.readRow(0, g, key, row, 0);
                    for (int d = 0; d < dim; d++) {
                        keys[key * dim + d] = row[d];
                    }
                    v.readRow(0, g, key, row, 0);
                    for (int d = 0; d < dv; d++) {
                        values[key * dv + d] = row[d];
                    }
                }
                double[] scores = new double[length];
                boolean[] admitted = new boolean[length];
                for (int h = g * s.groupSize(); h < (g + 1) * s.groupSize(); h++) {
                    int slice = b * s.qHeads() + h;
                    for (int r = 0; r < rows; r++) {
                        long pos = (long) length - rows + r;
                        int at = slice * rows + r;
                        qh.readRow(b, h, r, row, 0);
                        for (int d = 0; d < dim; d++) {
                            qv[d] = row[d];
                        }
                        double max = Double.NEGATIVE_INFINITY;
                        double mag = 0;
                        for (int key = 0; key < length; key++) {
                            admitted[key] = selection == null ? key <= pos : selection.admits(b, g, length, pos, key);
                            if (!admitted[key]) {
                                continue;
                            }
                            double dot = 0;
                            double abs = 0;
                            for (int d = 0, i = key * dim; d < dim; d++, i++) {
                                double p = qv[d] * keys[i];
                                dot += p;
                                abs += Math.abs(p);
                            }
                            mag = Math.max(mag, Math.abs(scale) * abs);
                            double sc = scale * dot;
                            if (cap > 0) {
                                sc = cap * Math.tanh(sc / cap);
                            }
                            scores[key] = sc;
                            max = Math.max(max, sc);
                        }
                        magnitude[at] = mag;
                        if (max == Double.NEGATIVE_INFINITY) {
                            lse[at] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        double sum = 0;
                        for (int key = 0; key < length; key++) {
                            if (admitted[key]) {
                                scores[key] = Math.exp(scores[key] - max);
                                sum += scores[key];
                            }
                        }
                        for (int key = 0; key < length; key++) {
                            if (admitted[key]) {
                                double p = scores[key] / sum;
                                for (int d = 0, i = key * dv; d < dv; d++, i++) {
                                    out[at * dv + d] += p * values[i];
                                }
                            }
                        }
                        lse[at] = max + Math.log(sum);
                    }
                }
            }
        }
        int[] rowIds = new int[rows];
        java.util.Arrays.setAll(rowIds, i -> i);
        return new ReferenceResult(s, rowIds, out, lse, magnitude);
    }
}
