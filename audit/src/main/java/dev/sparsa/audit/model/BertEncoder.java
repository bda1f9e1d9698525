package dev.sparsa.audit.model;

import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Objects;

/**
 * A BERT encoder forward pass in Java (post-LayerNorm, exact GELU), with each layer's attention
 * supplied by a {@link LayerAttention}, so Sparsa's attention replaces the dense one in a real model.
 * Thread-safe: the weights are only read.
 */
public final class BertEncoder {
    private final EncoderWeights w;

    public BertEncoder(EncoderWeights weights) {
        this.w = Objects.requireNonNull(weights, "weights");
    }

    /** The weights. */
    public EncoderWeights weights() {
        return w;
    }

    /**
     * The last hidden state {@code [seq, hidden]} (row-major) of one sequence of token ids, all of
     * token type 0.
     *
     * @throws IllegalArgumentException if the sequence is empty, longer than the model's positions, or
     *     holds an id outside the vocabulary
     */
    public float[] forward(int[] ids, LayerAttention attention) {
        Objects.requireNonNull(attention, "attention");
        int s = ids.length;
        int hd = w.hidden();
        if (s < 1 || s > w.maxPositions()) {
            throw new IllegalArgumentException("ids: " + s + " tokens, the model takes 1.." + w.maxPositions());
        }
        float[] h = new float[s * hd];
        for (int t = 0; t < s; t++) {
            int id = ids[t];
            if (id < 0 || id >= w.vocab()) {
                throw new IllegalArgumentException("ids[" + t + "]: " + id + " outside the vocabulary [0, " + w.vocab() + ")");
            }
            for (int d = 0; d < hd; d++) {
                h[t * hd + d] = w.wordEmbeddings()[id * hd + d] + w.positionEmbeddings()[t * hd + d] + w.tokenTypeEmbeddings()[d];
            }
        }
        layerNorm(h, s, hd, w.embedNormGamma(), w.embedNormBeta(), w.epsilon());
        int heads = w.heads();
        int dh = w.headDim();
        for (int l = 0; l < w.layers().size(); l++) {
            EncoderWeights.Layer p = w.layers().get(l);
            float[] q = Gemm.multiply(h, s, hd, p.wq(), hd, p.bq());
            float[] k = Gemm.multiply(h, s, hd, p.wk(), hd, p.bk());
            float[] v = Gemm.multiply(h, s, hd, p.wv(), hd, p.bv());
            Tensor out = attention.attend(l, Tensor.of(q, Layout.BSHD, 1, heads, s, dh),
                    Tensor.of(k, Layout.BSHD, 1, heads, s, dh), Tensor.of(v, Layout.BSHD, 1, heads, s, dh));
            float[] a = new float[s * hd];
            Tensor.copy(out, Tensor.of(a, Layout.BSHD, 1, heads, s, dh));
            float[] h1 = Gemm.multiply(a, s, hd, p.wo(), hd, p.bo());
            add(h1, h);
            layerNorm(h1, s, hd, p.norm1Gamma(), p.norm1Beta(), w.epsilon());
            float[] f = Gemm.multiply(h1, s, hd, p.wi(), w.ffn(), p.bi());
            for (int i = 0; i < f.length; i++) {
                f[i] = gelu(f[i]);
            }
            float[] h2 = Gemm.multiply(f, s, w.ffn(), p.wf(), hd, p.bf());
            add(h2, h1);
            layerNorm(h2, s, hd, p.norm2Gamma(), p.norm2Beta(), w.epsilon());
            h = h2;
        }
        return h;
    }

    /** The mean over tokens of a {@code [seq, dim]} hidden state, scaled to unit length: the sentence embedding. */
    public static float[] sentenceEmbedding(float[] hidden, int seq, int dim) {
        double[] sum = new double[dim];
        for (int t = 0; t < seq; t++) {
            for (int d = 0; d < dim; d++) {
                sum[d] += hidden[t * dim + d];
            }
        }
        double norm = 0;
        for (int d = 0; d < dim; d++) {
            sum[d] /= seq;
            norm += sum[d] * sum[d];
        }
        float[] out = new float[dim];
        double inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
        for (int d = 0; d < dim; d++) {
            out[d] = (float) (sum[d] * inv);
        }
        return out;
    }

    /** Cosine similarity of two vectors, in double. */
    public static double cosine(float[] a, float[] b) {
        if (a.length != b.length) {
            throw new IllegalArgumentException("cosine: lengths " + a.length + " and " + b.length + " differ");
        }
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return aa == 0 || bb == 0 ? 0 : ab / Math.sqrt(aa * bb);
    }

    private static void add(float[] into, float[] x) {
        for (int i = 0; i < into.length; i++) {
            into[i] += x[i];
        }
    }

    static void layerNorm(float[] x, int rows, int dim, float[] gamma, float[] beta, float eps) {
        for (int r = 0; r < rows; r++) {
            int o = r * dim;
            double mean = 0;
            for (int d = 0; d < dim; d++) {
                mean += x[o + d];
            }
            mean /= dim;
            double var = 0;
            for (int d = 0; d < dim; d++) {
                double c = x[o + d] - mean;
                var += c * c;
            }
            var /= dim;
            double inv = 1 / Math.sqrt(var + eps);
            for (int d = 0; d < dim; d++) {
                x[o + d] = (float) ((x[o + d] - mean) * inv * gamma[d] + beta[d]);
            }
        }
    }

    /** GELU with the error function, as BERT defines it: {@code x · (1 + erf(x / √2)) / 2}. */
    static float gelu(float x) {
        return (float) (0.5 * x * (1 + erf(x / Math.sqrt(2))));
    }

    /**
     * The error function to within 1.5e-7 (Abramowitz and Stegun, Handbook of Mathematical Functions,
     * 7.1.26): one exponential per call, well inside f32's resolution of GELU's output.
     */
    static double erf(double x) {
        double ax = Math.abs(x);
        double t = 1 / (1 + 0.3275911 * ax);
        double poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
        double r = 1 - poly * Math.exp(-ax * ax);
        return x < 0 ? -r : r;
    }
}
