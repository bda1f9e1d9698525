package dev.sparsa.bench;

import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * A generated decode problem: Q of one step and the same keys and values appended to any number of
 * caches. Entries are standard normal (rounded to the dtype), and each (sequence, KV head) hides
 * needles: about one key in 512 is {@code 16 ·} the unit direction of its group's mean query, so
 * that a few keys carry most of the attention mass (as retrieval does) and a sparse pattern's recall
 * says whether it found them. Deterministic in the seed.
 *
 * @param batch    sequences
 * @param qHeads   query heads
 * @param kvHeads  key/value heads
 * @param kvLength tokens per sequence
 * @param headDim  key and value head dimension
 * @param rows     query rows per sequence
 * @param seed     seed of every random draw
 */
public record DecodeProblem(int batch, int qHeads, int kvHeads, int kvLength, int headDim, int rows, long seed) {
    /** Tokens appended per call while filling. */
    private static final int CHUNK = 1024;
    private static final double NEEDLE_NORM = 16;
    /** The key scale of e4m3 caches: keys stay within ±32 (Gaussian rows plus a needle of norm 16). */
    public static final float E4M3_KEY_SCALE = 32f / DType.E4M3_MAX;
    /** The value scale of e4m3 caches: Gaussian values stay within ±8. */
    public static final float E4M3_VALUE_SCALE = 8f / DType.E4M3_MAX;

    /**
     * @throws IllegalArgumentException if a size is not positive or the heads do not group
     */
    public DecodeProblem {
        if (batch < 1 || qHeads < 1 || kvHeads < 1 || kvLength < 1 || headDim < 1 || rows < 1) {
            throw new IllegalArgumentException("problem: sizes must be >= 1, got batch " + batch + ", heads " + qHeads + "/"
                    + kvHeads + ", kvLength " + kvLength + ", headDim " + headDim + ", rows " + rows);
        }
        if (qHeads % kvHeads != 0) {
            throw new IllegalArgumentException("heads: " + qHeads + " query heads is not a multiple of " + kvHeads);
        }
    }

    /** Q {@code [batch, qHeads, rows, headDim]} in {@code dtype} (e4m3 with per-head absmax scales). */
    public Tensor query(DType dtype) {
        SplittableRandom rnd = new SplittableRandom(seed);
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, batch, qHeads, rows, headDim);
        float[] row = new float[headDim];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < qHeads; h++) {
                for (int r = 0; r < rows; r++) {
                    for (int d = 0; d < headDim; d++) {
                        row[d] = (float) rnd.nextGaussian();
                    }
                    q.writeRow(b, h, r, row, 0);
                }
            }
        }
        return dtype == DType.F32 ? q : dtype.isScaled() ? Tensor.quantizeE4m3PerHead(q, Layout.BHSD)
                : q.to(dtype, Layout.BHSD);
    }

    /** Appends the problem's keys and values to every cache (each must be empty and hold {@code batch} sequences). */
    public void fill(KvCache... caches) {
        Tensor q = query(DType.F32);
        int group = qHeads / kvHeads;
        float[][] needle = new float[batch * kvHeads][headDim];
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < kvHeads; g++) {
                float[] u = needle[b * kvHeads + g];
                float[] row = new float[headDim];
                for (int h = g * group; h < (g + 1) * group; h++) {
                    for (int r = 0; r < rows; r++) {
                        q.readRow(b, h, r, row, 0);
                        for (int d = 0; d < headDim; d++) {
                            u[d] += row[d];
                        }
                    }
                }
                double norm = 0;
                for (float x : u) {
                    norm += x * x;
                }
                double f = NEEDLE_NORM / Math.sqrt(Math.max(norm, 1e-30));
                for (int d = 0; d < headDim; d++) {
                    u[d] = (float) (u[d] * f);
                }
            }
        }
        SplittableRandom rnd = new SplittableRandom(seed ^ 0x5DEECE66DL);
        float[] row = new float[headDim];
        for (int b = 0; b < batch; b++) {
            for (int t0 = 0; t0 < kvLength; t0 += CHUNK) {
                int n = Math.min(CHUNK, kvLength - t0);
                Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, kvHeads, n, headDim);
                Tensor v = Tensor.allocate(DType.F32, Layout.BHSD, 1, kvHeads, n, headDim);
                for (int g = 0; g < kvHeads; g++) {
                    for (int t = 0; t < n; t++) {
                        boolean isNeedle = rnd.nextInt(512) == 0;
                        for (int d = 0; d < headDim; d++) {
                            row[d] = (float) rnd.nextGaussian() + (isNeedle ? needle[b * kvHeads + g][d] : 0f);
                        }
                        k.writeRow(0, g, t, row, 0);
                        for (int d = 0; d < headDim; d++) {
                            row[d] = (float) rnd.nextGaussian();
                        }
                        v.writeRow(0, g, t, row, 0);
                    }
                }
                for (KvCache c : caches) {
                    c.append(b, k, v);
                }
            }
        }
    }
}
