package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.moba.MobaSelection;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * MoBA against a port of the authors' reference, {@code moba_attn_varlen_naive} in
 * github.com/MoonshotAI/MoBA, file {@code moba/moba_naive.py}, commit
 * 61e456bc956c5a25fd9c84e5496b661329cb1b72 (one sequence, no varlen; in double precision): the token
 * set of every row equals the reference's mask, and the fp64 oracle of the plan equals the
 * reference's output.
 */
class MobaTest {

    /** The reference's attention mask [head][query][key] and output [head][query][d], for q, k, v as [head][seq][d]. */
    record Port(boolean[][][] attend, double[][][] out) {
    }

    static Port mobaNaive(float[][][] q, float[][][] k, float[][][] v, int chunk, int topk) {
        int heads = q.length;
        int s = q[0].length;
        int d = q[0][0].length;
        double scale = Math.pow(d, -0.5);
        int numBlock = (s + chunk - 1) / chunk;
        boolean[][][] attend = new boolean[heads][s][s];
        double[][][] out = new double[heads][s][v[0][0].length];
        for (int h = 0; h < heads; h++) {
            // key_gate_weight: the mean of each chunk's keys
            double[][] kgw = new double[numBlock][d];
            for (int b = 0; b < numBlock; b++) {
                int end = Math.min(s, (b + 1) * chunk);
                for (int t = b * chunk; t < end; t++) {
                    for (int x = 0; x < d; x++) {
                        kgw[b][x] += k[h][t][x];
                    }
                }
                for (int x = 0; x < d; x++) {
                    kgw[b][x] /= end - b * chunk;
                }
            }
            // gate = einsum("shd,nhd->hsn"); future chunks -inf, own chunk +inf
            double[][] gate = new double[s][numBlock];
            for (int t = 0; t < s; t++) {
                for (int b = 0; b < numBlock; b++) {
                    double g = 0;
                    for (int x = 0; x < d; x++) {
                        g += (double) q[h][t][x] * kgw[b][x];
                    }
                    gate[t][b] = g;
                }
            }
            for (int i = 0; i < numBlock; i++) {
                for (int t = 0; t < Math.min(s, (i + 1) * chunk); t++) {
                    gate[t][i] = Double.NEGATIVE_INFINITY;
                }
                for (int t = i * chunk; t < Math.min(s, (i + 1) * chunk); t++) {
                    gate[t][i] = Double.POSITIVE_INFINITY;
                }
            }
            int kk = Math.min(topk, numBlock);
            for (int t = 0; t < s; t++) {
                // torch.topk(k) then need_attend = gate >= kth value, and-ed with the top-k indices
                Integer[] order = new Integer[numBlock];
                for (int b = 0; b < numBlock; b++) {
                    order[b] = b;
                }
                final double[] g = gate[t];
                java.util.Arrays.sort(order, (a, b) -> Double.compare(g[b], g[a]));
                boolean[] need = new boolean[numBlock];
                for (int i = 0; i < kk; i++) {
                    need[order[i]] = true;
                }
                // gate.repeat_interleave(chunk)[:, :, :s] masked by tril: key y attended iff need[y / chunk] and y <= t
                double max = Double.NEGATIVE_INFINITY;
                double[] logits = new double[s];
                for (int y = 0; y < s; y++) {
                    attend[h][t][y] = need[y / chunk] && y <= t;
                    double dot = 0;
                    for (int x = 0; x < d; x++) {
                        dot += (double) q[h][t][x] * k[h][y][x];
                    }
                    logits[y] = attend[h][t][y] ? dot * scale : Double.NEGATIVE_INFINITY;
                    max = Math.max(max, logits[y]);
                }
                double sum = 0;
                for (int y = 0; y < s; y++) {
                    logits[y] = Math.exp(logits[y] - max);
                    sum += logits[y];
                }
                for (int y = 0; y < s; y++) {
                    for (int c = 0; c < out[h][t].length; c++) {
                        out[h][t][c] += logits[y] / sum * v[h][y][c];
                    }
                }
            }
        }
        return new Port(attend, out);
    }

    static float[][][] heads(dev.sparsa.tensor.Tensor t) {
        float[][][] a = new float[t.heads()][t.seqLen()][t.dim()];
        for (int h = 0; h < t.heads(); h++) {
            for (int s = 0; s < t.seqLen(); s++) {
                t.readRow(0, h, s, a[h][s], 0);
            }
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({
        // n, heads, dim, chunk, topk, tileRows, blockCols
        "100, 2, 16, 16, 3, 16, 16",
        "90, 3, 24, 12, 2, 8, 8",
        "77, 1, 16, 10, 4, 16, 24",
        "64, 2, 8, 64, 3, 16, 16",
    })
    void equalsTheAuthorsNaiveReference(int n, int heads, int dim, int chunk, int topk, int tileRows, int blockCols) {
        AttentionShape shape = AttentionShape.of(1, heads, n, n, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(tileRows, blockCols));
        Problems.Qkv x = Problems.qkv(n * 13L + chunk, shape, DType.F32, Layout.BHSD);
        MobaSelection moba = new MobaSelection(chunk, topk);
        SparsePlan plan = moba.plan(PlanContext.of(shape, o), x.q(), x.k());
        Port ref = mobaNaive(heads(x.q()), heads(x.k()), heads(x.v()), chunk, topk);
        Definitions.assertTokenSet(plan, (b, h, r, k) -> ref.attend()[h][r][k], moba.name());
        ReferenceResult ours = ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o);
        double worst = 0;
        for (int h = 0; h < heads; h++) {
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < dim; c++) {
                    worst = Math.max(worst, Math.abs(ours.out(0, h, r, c) - ref.out()[h][r][c]));
                }
            }
        }
        assertTrue(worst < 1e-9, "output differs from the reference by " + worst);
    }
}
