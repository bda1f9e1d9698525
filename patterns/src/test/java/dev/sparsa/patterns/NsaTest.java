package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.nsa.NativeSparseAttention;
import dev.sparsa.patterns.nsa.NsaCompressedBranch;
import dev.sparsa.patterns.nsa.NsaCompression;
import dev.sparsa.patterns.nsa.NsaSelection;
import dev.sparsa.patterns.window.SlidingWindow;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * NSA against a port of the reference in github.com/fla-org/native-sparse-attention, file {@code
 * native_sparse_attention/ops/naive.py}, commit bd67af59b90afa34b25f61d2922e612d10dba3bd: {@code
 * compression}, {@code naive_nsa_compression} (block selection shared by a GQA group) and {@code
 * naive_nsa} (selected and sliding-window branches), mixed by gates as {@code
 * naive_nsa_with_compression} does; in double precision, one sequence. The selected branch's token
 * sets must equal the reference's, and the gated mix of the three branches' fp64 oracles must equal
 * the reference's output (to the f32 rounding of the compressed means).
 */
class NsaTest {

    /** The reference's selected keys [qHead][t][key] and output [qHead][t][d]. */
    record Port(boolean[][][] selected, double[][][] out) {
    }

    static Port naiveNsaWithCompression(float[][][] q, float[][][] k, float[][][] v, float[][][] gates, int bs, int s,
                                        int window) {
        int hq = q.length;
        int hk = k.length;
        int g = hq / hk;
        int t = q[0].length;
        int d = q[0][0].length;
        int dv = v[0][0].length;
        double scale = Math.pow(d, -0.5);
        int c = (t + bs - 1) / bs;
        int sel = Math.min(s, c);
        // compression: zero-padded mean pooling
        double[][][] kc = new double[hk][c][d];
        double[][][] vc = new double[hk][c][dv];
        for (int h = 0; h < hk; h++) {
            for (int b = 0; b < c; b++) {
                for (int x = b * bs; x < Math.min(t, (b + 1) * bs); x++) {
                    for (int y = 0; y < d; y++) {
                        kc[h][b][y] += k[h][x][y] / (double) bs;
                    }
                    for (int y = 0; y < dv; y++) {
                        vc[h][b][y] += v[h][x][y] / (double) bs;
                    }
                }
            }
        }
        double[][][] out = new double[hq][t][dv];
        double[][][] attnSelect = new double[hk][t][c];
        for (int h = 0; h < hq; h++) {
            int kv = h / g;
            for (int i = 0; i < t; i++) {
                // casual_mask: (i - BS + 1) // BS < block; empty rows keep 0
                int seen = Math.floorDiv(i - bs + 1, bs) + 1;
                double[] attn = new double[c];
                if (seen > 0) {
                    double max = Double.NEGATIVE_INFINITY;
                    for (int b = 0; b < c; b++) {
                        attn[b] = b < seen ? scale * dot(q[h][i], kc[kv][b]) : Double.NEGATIVE_INFINITY;
                        max = Math.max(max, attn[b]);
                    }
                    double sum = 0;
                    for (int b = 0; b < c; b++) {
                        attn[b] = Math.exp(attn[b] - max);
                        sum += attn[b];
                    }
                    for (int b = 0; b < c; b++) {
                        attn[b] /= sum;
                        for (int y = 0; y < dv; y++) {
                            out[h][i][y] += gates[h][i][0] * attn[b] * vc[kv][b][y];
                        }
                    }
                }
                for (int b = 0; b < c; b++) {
                    attnSelect[kv][i][b] += i / bs == b ? 1.0 : attn[b];
                }
            }
        }
        boolean[][][] selected = new boolean[hq][t][t];
        for (int kv = 0; kv < hk; kv++) {
            for (int i = 0; i < t; i++) {
                Integer[] order = new Integer[c];
                for (int b = 0; b < c; b++) {
                    order[b] = b;
                }
                final double[] a = attnSelect[kv][i];
                java.util.Arrays.sort(order, (x, y) -> Double.compare(a[y], a[x]));
                for (int j = 0; j < sel; j++) {
                    int b = order[j] > i / bs ? -1 : order[j]; // block_indices > t // BS -> -1
                    for (int x = 0; x < bs && b >= 0; x++) {
                        int key = b * bs + x;
                        if (key <= i) { // keys masked when < 0 or > i_q
                            for (int h = kv * g; h < (kv + 1) * g; h++) {
                                selected[h][i][key] = true;
                            }
                        }
                    }
                }
            }
        }
        for (int h = 0; h < hq; h++) {
            int kv = h / g;
            for (int i = 0; i < t; i++) {
                final int row = i;
                final int head = h;
                attend(q[h][i], k[kv], v[kv], scale, key -> selected[head][row][key], gates[h][i][1], out[h][i]);
                if (window > 0) {
                    attend(q[h][i], k[kv], v[kv], scale, key -> key <= row && key > row - window, gates[h][i][2], out[h][i]);
                }
            }
        }
        return new Port(selected, out);
    }

    private static void attend(float[] q, float[][] k, float[][] v, double scale, java.util.function.IntPredicate keys,
                               double gate, double[] out) {
        double max = Double.NEGATIVE_INFINITY;
        double[] e = new double[k.length];
        for (int key = 0; key < k.length; key++) {
            e[key] = keys.test(key) ? scale * dot(q, k[key]) : Double.NEGATIVE_INFINITY;
            max = Math.max(max, e[key]);
        }
        double sum = 0;
        for (int key = 0; key < k.length; key++) {
            e[key] = Math.exp(e[key] - max);
            sum += e[key];
        }
        for (int key = 0; key < k.length; key++) {
            for (int y = 0; y < out.length; y++) {
                out[y] += gate * e[key] / sum * v[key][y];
            }
        }
    }

    private static double dot(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (double) a[i] * b[i];
        }
        return s;
    }

    private static double dot(float[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @ParameterizedTest
    @CsvSource({
        // n, qHeads, kvHeads, dim, blockSize, blockCount, window, tileRows, blockCols
        "96, 2, 1, 16, 16, 3, 24, 16, 16",
        "100, 4, 2, 16, 8, 4, 16, 16, 8",
        "75, 2, 2, 24, 10, 2, 0, 8, 24",
    })
    void equalsTheReferenceNaiveNsa(int n, int qHeads, int kvHeads, int dim, int bs, int count, int window, int rows,
                                    int cols) {
        AttentionShape shape = new AttentionShape(1, qHeads, kvHeads, n, n, dim, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(rows, cols));
        Problems.Qkv x = Problems.qkv(n * 3L + bs, shape, DType.F32, Layout.BHSD);
        SplittableRandom rnd = new SplittableRandom(n);
        float[] gateData = new float[qHeads * n * 3];
        for (int i = 0; i < gateData.length; i++) {
            gateData[i] = (float) rnd.nextDouble();
        }
        Tensor gates = Tensor.of(gateData, 1, qHeads, n, 3);
        Port ref = naiveNsaWithCompression(MobaTest.heads(x.q()), MobaTest.heads(x.k()), MobaTest.heads(x.v()),
                gatesOf(gates), bs, count, window);

        NsaSelection selection = new NativeSparseAttention(bs, count, window).selection(Double.NaN);
        SparsePlan selPlan = selection.plan(PlanContext.of(shape, o), x.q(), x.k());
        Definitions.assertTokenSet(selPlan, (b, h, r, key) -> ref.selected()[h][r][key], selection.name());
        for (int h = 0; h < qHeads; h++) {
            int first = h / (qHeads / kvHeads) * (qHeads / kvHeads);
            assertTrue(selPlan.layoutIndex(0, h) == selPlan.layoutIndex(0, first), "a GQA group shares its selection");
        }

        // the three branches through the fp64 oracle, mixed by the gates
        ReferenceResult sel = ReferenceAttention.plan(selPlan, x.q(), x.k(), x.v(), o);
        ReferenceResult win = window == 0 ? null : ReferenceAttention.plan(
                SlidingWindow.of(window).plan(PlanContext.of(shape, o)), x.q(), x.k(), x.v(), o);
        Tensor kc = NsaCompression.meanPool(x.k(), bs);
        Tensor vc = NsaCompression.meanPool(x.v(), bs);
        Options open = o.withCausal(false);
        AttentionShape cShape = AttentionShape.of(x.q(), kc, vc);
        SparsePlan cmpPlan = new NsaCompressedBranch(bs, 0, true).plan(PlanContext.of(cShape, open));
        ReferenceResult cmp = ReferenceAttention.plan(cmpPlan, x.q(), kc, vc, open);
        double worst = 0;
        for (int h = 0; h < qHeads; h++) {
            for (int r = 0; r < n; r++) {
                for (int c = 0; c < dim; c++) {
                    double mixed = gates.get(0, h, r, 0) * cmp.out(0, h, r, c) + gates.get(0, h, r, 1) * sel.out(0, h, r, c)
                            + (win == null ? 0 : gates.get(0, h, r, 2) * win.out(0, h, r, c));
                    worst = Math.max(worst, Math.abs(mixed - ref.out()[h][r][c]));
                }
            }
        }
        // the compressed keys and values are f32 block means (what a kernel reads), the port's are doubles
        assertTrue(worst < 1e-6, "mixed output differs from the reference by " + worst);
    }

    private static float[][][] gatesOf(Tensor g) {
        float[][][] a = new float[g.heads()][g.seqLen()][3];
        for (int h = 0; h < g.heads(); h++) {
            for (int r = 0; r < g.seqLen(); r++) {
                g.readRow(0, h, r, a[h][r], 0);
            }
        }
        return a;
    }
}
