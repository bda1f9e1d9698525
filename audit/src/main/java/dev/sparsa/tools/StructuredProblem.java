package dev.sparsa.tools;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * A generated attention problem shaped like real long context, so that estimators have something
 * to find and every pattern's row in {@code sparsa demo} means something (the mask pictures of
 * data-dependent patterns are planned on it too). Per head, Q and K are built from channels that each plant one structure in
 * the score matrix {@code s = q·k/√D}:
 *
 * <ul>
 *   <li><b>local band</b>: rotary pairs {@code (cos pω, sin pω)} at a few frequencies; their dot
 *       product is {@code Σ c² cos((i−j)ω)}, largest near the diagonal;
 *   <li><b>periodic slashes</b>: one rotary pair of period {@code P} (64 or 128) lifts every diagonal
 *       {@code i − j ≡ 0 (mod P)};
 *   <li><b>sinks and vertical columns</b>: one channel that every query reads and that only the first
 *       4 keys and a few random "vertical" keys carry;
 *   <li><b>a needle</b>: one key in the first half shares a private channel with the last 64 queries
 *       only (the retrieval target a pattern must not drop);
 *   <li>Gaussian noise on the remaining channels.
 * </ul>
 *
 * Head strengths vary (some heads mostly local, some mostly vertical) as in measured LLM heads.
 * Values are Gaussian. Everything is seeded.
 */
public final class StructuredProblem {
    private StructuredProblem() {
    }

    /** Generated Q, K, V in f32 (BHSD) and the positions of the planted structures. */
    public record Generated(Tensor q, Tensor k, Tensor v, int needleKey, int[] verticalKeys) {
        /** The same problem with Q, K, V rounded to {@code dtype}. */
        public Generated as(DType dtype) {
            if (dtype == DType.F32) {
                return this;
            }
            if (dtype == DType.E4M3) {
                // per-head absmax scales: the planted needle and columns keep their place in each head's range
                return new Generated(Tensor.quantizeE4m3PerHead(q, Layout.BHSD), Tensor.quantizeE4m3PerHead(k, Layout.BHSD),
                        Tensor.quantizeE4m3PerHead(v, Layout.BHSD), needleKey, verticalKeys);
            }
            return new Generated(q.to(dtype, Layout.BHSD), k.to(dtype, Layout.BHSD), v.to(dtype, Layout.BHSD),
                    needleKey, verticalKeys);
        }
    }

    /**
     * @throws IllegalArgumentException if the head dim is below 16 (too few channels to plant structure)
     */
    public static Generated generate(AttentionShape s, long seed) {
        if (s.headDim() < 16) {
            throw new IllegalArgumentException("dim: the demo problem needs headDim >= 16, got " + s.headDim());
        }
        SplittableRandom rnd = new SplittableRandom(seed);
        int n = s.keyLength();
        int nq = s.queryLength();
        int offset = n - nq;
        int d = s.headDim();
        double root = Math.sqrt(Math.sqrt(d)); // channel amplitude a gives score a²/√D = (a/root)²
        int[] verticals = new int[Math.max(1, n / 512)];
        for (int i = 0; i < verticals.length; i++) {
            verticals[i] = 4 + rnd.nextInt(Math.max(1, n - 4));
        }
        int needle = n / 8 + rnd.nextInt(Math.max(1, n / 3));
        float[] q = new float[s.batch() * s.qHeads() * nq * d];
        float[] k = new float[s.batch() * s.kvHeads() * n * d];
        float[] v = new float[s.batch() * s.kvHeads() * n * s.valueDim()];
        double[] periods = {24, 160, 1200};
        for (int b = 0; b < s.batch(); b++) {
            for (int kh = 0; kh < s.kvHeads(); kh++) {
                double local = 1.5 + 1.5 * rnd.nextDouble();      // band strength (score units)
                double slash = rnd.nextDouble() < 0.5 ? 2.5 : 0.5; // periodic slashes
                int period = rnd.nextBoolean() ? 64 : 128;
                double vertical = 2 + 3 * rnd.nextDouble();        // sinks and columns
                double needleStrength = 9;
                double[] rot = new double[periods.length + 1];
                double[] freq = new double[periods.length + 1];
                for (int f = 0; f < periods.length; f++) {
                    rot[f] = Math.sqrt(local) * root;
                    freq[f] = Math.PI / periods[f];
                }
                rot[periods.length] = Math.sqrt(slash) * root;
                freq[periods.length] = 2 * Math.PI / period;
                int sinkCh = 2 * rot.length;
                int needleCh = sinkCh + 1;
                // keys (and values) of this kv head
                for (int j = 0; j < n; j++) {
                    int at = ((b * s.kvHeads() + kh) * n + j) * d;
                    for (int f = 0; f < rot.length; f++) {
                        k[at + 2 * f] = (float) (rot[f] * Math.cos(j * freq[f]));
                        k[at + 2 * f + 1] = (float) (rot[f] * Math.sin(j * freq[f]));
                    }
                    boolean column = j < 4 || contains(verticals, j);
                    k[at + sinkCh] = column ? (float) (Math.sqrt(vertical) * root * 1.2) : 0f;
                    k[at + needleCh] = j == needle ? (float) (Math.sqrt(needleStrength) * root) : 0f;
                    for (int c = needleCh + 1; c < d; c++) {
                        k[at + c] = (float) (rnd.nextGaussian() * 0.35);
                    }
                    int vat = ((b * s.kvHeads() + kh) * n + j) * s.valueDim();
                    for (int c = 0; c < s.valueDim(); c++) {
                        v[vat + c] = (float) rnd.nextGaussian();
                    }
                }
                // queries of every q head in this kv head's group
                for (int g = 0; g < s.groupSize(); g++) {
                    int h = kh * s.groupSize() + g;
                    double jitter = 0.8 + 0.4 * rnd.nextDouble();
                    for (int i = 0; i < nq; i++) {
                        int at = ((b * s.qHeads() + h) * nq + i) * d;
                        long pos = (long) i + offset;
                        for (int f = 0; f < rot.length; f++) {
                            q[at + 2 * f] = (float) (jitter * rot[f] * Math.cos(pos * freq[f]));
                            q[at + 2 * f + 1] = (float) (jitter * rot[f] * Math.sin(pos * freq[f]));
                        }
                        q[at + sinkCh] = (float) (Math.sqrt(vertical) * root / 1.2 * jitter);
                        q[at + needleCh] = i >= nq - 64 ? (float) (Math.sqrt(needleStrength) * root) : 0f;
                        for (int c = needleCh + 1; c < d; c++) {
                            q[at + c] = (float) (rnd.nextGaussian() * 0.35);
                        }
                    }
                }
            }
        }
        return new Generated(Tensor.of(q, s.batch(), s.qHeads(), nq, d), Tensor.of(k, s.batch(), s.kvHeads(), n, d),
                Tensor.of(v, s.batch(), s.kvHeads(), n, s.valueDim()), needle, verticals);
    }

    private static boolean contains(int[] a, int x) {
        for (int y : a) {
            if (y == x) {
                return true;
            }
        }
        return false;
    }
}
