package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.SelectionReuse;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Selection reuse across layers against TidalDecode's decode step, ported: dense layers before
 * {@code sparse_layer_start}; at {@code sparse_layer_start} and at {@code correction_layer} a layer
 * attends to every key and chooses the top-k positions of its own scores; every other layer attends to
 * the positions the last choosing layer chose, with its own query and cache. In Sparsa that is one
 * {@link SelectionReuse} shared by the layers of a step: the first choosing layer's {@code select}
 * makes a fresh top-k selection (a new step), the next layers' calls return it, and {@code refresh()}
 * before the correction layer makes it choose again. With one query head per KV head the two rules
 * choose per head alike (with grouped heads TidalDecode's reference chooses per query head, Sparsa per
 * KV group: docs/decode.md). The port computes every layer's output in double precision from its own
 * scores and choice, so the comparison is independent of Sparsa's oracle.
 */
class TidalDecodePortTest {
    private static final int LAYERS = 8;
    private static final int HEADS = 4;
    private static final int DIM = 32;
    private static final int TOP_K = 32;
    private static final int SPARSE_LAYER_START = 2;
    private static final int CORRECTION_LAYER = 5;

    // ---- Ported from github.com/DerrickYLJ/TidalDecode, src/tidal_build/modify_llama.py, commit
    // d67a1bdfc2ed7611ed92be4f60883d98197cb641: the decoding branch of llama_tidal_attention_forward for one
    // query row (and src/models/llama_tidaldecoding.py, which hands each layer the previous layer's
    // pos_dict). keys[h][t], values[h][t], q[h]; `posDict` is pos_dict, per head, or null.
    private record LayerResult(double[][] out, boolean[][] posDict) {
    }

    private static LayerResult tidalLayer(int layerIdx, double[][] q, double[][][] keys, double[][][] values,
                                          boolean[][] posDict) {
        int kvLen = keys[0].length;
        double[][] out = new double[HEADS][DIM];
        boolean[][] next = posDict;
        boolean choosing = layerIdx == SPARSE_LAYER_START || layerIdx == CORRECTION_LAYER;
        if (choosing) {
            next = new boolean[HEADS][];
        }
        for (int h = 0; h < HEADS; h++) {
            // attn_weights = matmul(q, k^T) / sqrt(head_dim); the causal mask adds 0 to the last row
            double[] w = new double[kvLen];
            for (int t = 0; t < kvLen; t++) {
                double s = 0;
                for (int c = 0; c < DIM; c++) {
                    s += q[h][c] * keys[h][t][c];
                }
                w[t] = s / Math.sqrt(DIM);
            }
            if (layerIdx >= SPARSE_LAYER_START) {
                int tokenBudget = Math.min(kvLen, TOP_K);
                if (choosing) {
                    // _, top_k_indices = torch.topk(attn_weights, k=token_budget); pos_dict = mask of them
                    double[] sorted = w.clone();
                    Arrays.sort(sorted);
                    double kth = sorted[kvLen - tokenBudget];
                    next[h] = new boolean[kvLen];
                    for (int t = 0; t < kvLen; t++) {
                        next[h][t] = w[t] >= kth;
                    }
                } else {
                    // masked_fill(pos_dict == 0, finfo.min): those keys get no weight
                    for (int t = 0; t < kvLen; t++) {
                        if (!posDict[h][t]) {
                            w[t] = Double.NEGATIVE_INFINITY;
                        }
                    }
                }
            }
            // softmax(attn_weights) @ value_states
            double max = Arrays.stream(w).max().orElseThrow();
            double sum = 0;
            for (int t = 0; t < kvLen; t++) {
                double e = Math.exp(w[t] - max);
                sum += e;
                for (int c = 0; c < DIM; c++) {
                    out[h][c] += e * values[h][t][c];
                }
            }
            for (int c = 0; c < DIM; c++) {
                out[h][c] /= sum;
            }
        }
        return new LayerResult(out, next);
    }

    /** The k-th and (k+1)-th largest score of a head are farther apart than this in every choice. */
    private static final double MARGIN = 1e-4;

    @Test
    void reusedTopKAcrossLayersGivesTidalDecodesOutputs() {
        SplittableRandom rnd = new SplittableRandom(91207);
        int prompt = 300;
        ContiguousKvCache[] caches = new ContiguousKvCache[LAYERS];
        for (int l = 0; l < LAYERS; l++) {
            caches[l] = ContiguousKvCache.allocate(DType.F32, 1, HEADS, prompt + 3, DIM, DIM);
            caches[l].append(0, Problems.random(rnd, DType.F32, Layout.BHSD, 1, HEADS, prompt, DIM, 2.0),
                    Problems.random(rnd, DType.F32, Layout.BHSD, 1, HEADS, prompt, DIM, 1.0));
        }
        DecodePattern topK = DecodePattern.topK(TOP_K);
        DecodeOptions o = DecodeOptions.defaults();
        SelectionReuse reuse = SelectionReuse.forSteps(0);
        for (int step = 0; step < 3; step++) {
            boolean[][] posDict = null;
            DecodeSelection sel = null;
            for (int l = 0; l < LAYERS; l++) {
                caches[l].appendStep(Problems.random(rnd, DType.F32, Layout.BHSD, 1, HEADS, 1, DIM, 2.0),
                        Problems.random(rnd, DType.F32, Layout.BHSD, 1, HEADS, 1, DIM, 1.0));
                Tensor q = Problems.random(rnd, DType.F32, Layout.BHSD, 1, HEADS, 1, DIM, 2.0);
                int length = caches[l].length(0);
                double[][][] keys = cached(caches[l].keys(0), length);
                LayerResult port = tidalLayer(l, rows(q), keys, cached(caches[l].values(0), length), posDict);
                String what = "step " + step + " layer " + l;
                Tensor out;
                if (l < SPARSE_LAYER_START) {
                    out = Attention.decode(q, caches[l], o);
                } else {
                    if (l == CORRECTION_LAYER) {
                        reuse.refresh();
                    }
                    DecodeSelection previous = sel;
                    sel = Attention.select(q, caches[l], topK, o, reuse);
                    if (l == SPARSE_LAYER_START || l == CORRECTION_LAYER) {
                        assertTrue(reuse.lastWasFresh(), what + ": a choosing layer selects afresh");
                        assertNotSame(previous, sel, what);
                        assertChoosesThePortsKeys(sel, port.posDict(), rows(q), keys, what);
                        out = Attention.decode(q, caches[l], o); // the choosing layer itself attends to every key
                    } else {
                        assertSame(previous, sel, what + ": a later layer of the step reuses the choice");
                        out = Attention.decode(q, caches[l], sel, o);
                    }
                }
                posDict = port.posDict();
                double worst = 0;
                double largest = 0;
                for (int h = 0; h < HEADS; h++) {
                    for (int c = 0; c < DIM; c++) {
                        worst = Math.max(worst, Math.abs(out.get(0, h, 0, c) - port.out()[h][c]));
                        largest = Math.max(largest, Math.abs(port.out()[h][c]));
                    }
                }
                assertTrue(worst <= 1e-5 * largest, what + ": error " + worst + " of " + largest);
            }
        }
    }

    /** The selection's chosen keys per head are the port's pos_dict, and no choice sits on a near tie. */
    private static void assertChoosesThePortsKeys(DecodeSelection sel, boolean[][] posDict, double[][] q,
                                                  double[][][] keys, String what) {
        for (int h = 0; h < HEADS; h++) {
            boolean[] chosen = posDict[h];
            int[] want = IntStream.range(0, chosen.length).filter(t -> chosen[t]).toArray();
            int[] spans = sel.chosenSpans(0, h);
            int[] got = IntStream.range(0, spans.length / 2)
                    .flatMap(i -> IntStream.range(spans[2 * i], spans[2 * i + 1])).toArray();
            assertArrayEquals(want, got, what + " head " + h);
            double[] s = new double[keys[h].length];
            for (int t = 0; t < s.length; t++) {
                for (int c = 0; c < DIM; c++) {
                    s[t] += q[h][c] * keys[h][t][c];
                }
            }
            Arrays.sort(s);
            assertTrue(s[s.length - TOP_K] - s[s.length - TOP_K - 1] > MARGIN, what + " head " + h + ": a near tie");
        }
    }

    /** Q's one row per head, in double. */
    private static double[][] rows(Tensor q) {
        double[][] r = new double[HEADS][DIM];
        for (int h = 0; h < HEADS; h++) {
            for (int c = 0; c < DIM; c++) {
                r[h][c] = q.get(0, h, 0, c);
            }
        }
        return r;
    }

    /** The first {@code length} rows of a sequence's cached K or V ({@code [1, heads, length, dim]}), in double. */
    private static double[][][] cached(Tensor t, int length) {
        double[][][] r = new double[HEADS][length][DIM];
        for (int h = 0; h < HEADS; h++) {
            for (int s = 0; s < length; s++) {
                for (int c = 0; c < DIM; c++) {
                    r[h][s][c] = t.get(0, h, s, c);
                }
            }
        }
        return r;
    }
}
