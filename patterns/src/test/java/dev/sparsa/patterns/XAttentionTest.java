package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.patterns.xattention.XAttention;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * XAttention against a port of the authors' estimate (github.com/mit-han-lab/x-attention, commit
 * e37988770b9d1bebd489eba011d615f35587ba08): {@code xattn_estimate} in {@code xattn/src/Xattention.py}
 * (the PyTorch path, {@code select_mode="inverse"}, {@code kdb=1}, {@code norm=1}, one chunk, causal),
 * {@code find_blocks_chunked} in {@code xattn/src/utils.py} (sorted masses, the cumulative sum as the
 * authors build it, forced first and diagonal blocks) and the final lower-triangular cut; in double
 * precision, self-attention over a whole number of blocks. The selected blocks of every query block
 * must be the reference's, and the plan must admit exactly their keys under causality.
 */
class XAttentionTest {

    /** The reference's block mask [queryBlock][keyBlock] for one head (q, k as [seq][d]). */
    static boolean[][] xattnEstimate(float[][] q, float[][] k, int blockSize, int stride, double threshold) {
        int n = q.length;
        int d = q[0].length;
        int groups = n / stride;
        int blocks = n / blockSize;
        int per = blockSize / stride;
        // reshaped_key: cat([K[:, k::stride] for k]), reshaped_query: cat([Q[:, (stride-1-q)::stride] for q])
        double[][] rk = new double[groups][stride * d];
        double[][] rq = new double[groups][stride * d];
        for (int g = 0; g < groups; g++) {
            for (int s = 0; s < stride; s++) {
                for (int x = 0; x < d; x++) {
                    rk[g][s * d + x] = k[g * stride + s][x];
                    rq[g][s * d + x] = q[g * stride + (stride - 1 - s)][x];
                }
            }
        }
        double[][] attnSum = new double[blocks][blocks];
        for (int i = 0; i < groups; i++) {
            double[] w = new double[groups];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < groups; j++) {
                double dot = 0;
                for (int x = 0; x < stride * d; x++) {
                    dot += rq[i][x] * rk[j][x];
                }
                w[j] = j > i ? Double.NEGATIVE_INFINITY : dot / Math.sqrt(d) / stride; // triu(diagonal=1) masked
                max = Math.max(max, w[j]);
            }
            double sum = 0;
            for (int j = 0; j < groups; j++) {
                w[j] = Math.exp(w[j] - max);
                sum += w[j];
            }
            for (int j = 0; j < groups; j++) {
                attnSum[i / per][j / per] += w[j] / sum;
            }
        }
        boolean[][] mask = new boolean[blocks][blocks];
        for (int r = 0; r < blocks; r++) {
            double[] a = attnSum[r];
            double total = Arrays.stream(a).sum();
            double required = total * threshold;
            boolean[] forced = new boolean[blocks];
            forced[0] = true;
            forced[r] = true; // current_index + r with current_index = k_block_num - q_block_num = 0
            double[] other = new double[blocks];
            double forcedSum = 0;
            for (int j = 0; j < blocks; j++) {
                other[j] = forced[j] ? 0 : a[j];
                forcedSum += forced[j] ? a[j] : 0;
            }
            double[] sorted = Arrays.stream(other).boxed().sorted((x, y) -> Double.compare(y, x)).mapToDouble(x -> x).toArray();
            // sorted_values = cat([0, forced sum, sorted[:-2]]).cumsum()
            double[] cum = new double[blocks];
            double acc = 0;
            for (int p = 0; p < blocks; p++) {
                acc += p == 0 ? 0 : p == 1 ? forcedSum : sorted[p - 2];
                cum[p] = acc;
            }
            List<Integer> index = new ArrayList<>();
            for (int j = 0; j < blocks; j++) {
                index.add(j);
            }
            double[] key = new double[blocks];
            for (int j = 0; j < blocks; j++) {
                key[j] = forced[j] ? 100000 * (1 + a[j]) : a[j];
            }
            index.sort((x, y) -> Double.compare(key[y], key[x]));
            System.arraycopy(forced, 0, mask[r], 0, blocks);
            for (int p = 0; p < blocks; p++) {
                mask[r][cum[p] < required ? index.get(p) : 0] = true;
            }
            for (int j = r + 1; j < blocks; j++) {
                mask[r][j] = false; // the final tril over the query blocks
            }
        }
        return mask;
    }

    @ParameterizedTest
    @CsvSource({
        // n, dim, blockSize, stride, threshold, tileRows, blockCols
        "128, 16, 16, 4, 0.9, 16, 16",
        "160, 16, 32, 8, 0.8, 16, 8",
        "96, 24, 16, 16, 0.95, 8, 24",
        "64, 8, 8, 2, 0.5, 8, 8",
    })
    void equalsTheAuthorsEstimate(int n, int dim, int blockSize, int stride, double threshold, int rows, int cols) {
        AttentionShape shape = AttentionShape.of(1, 2, n, n, dim);
        Options o = Options.causalMask().withGeometry(new TileGeometry(rows, cols));
        Problems.Qkv x = Problems.qkv(n * 11L + stride, shape, DType.F32, Layout.BHSD);
        XAttention xa = new XAttention(blockSize, stride, threshold);
        PlanContext ctx = PlanContext.of(shape, o);
        float[][][] q = MobaTest.heads(x.q());
        float[][][] k = MobaTest.heads(x.k());
        boolean[][][] ref = new boolean[2][][];
        for (int h = 0; h < 2; h++) {
            ref[h] = xattnEstimate(q[h], k[h], blockSize, stride, threshold);
            int[][] ours = xa.select(ctx, dev.sparsa.patterns.support.Vectors.rows(x.q(), 0, h),
                    dev.sparsa.patterns.support.Vectors.rows(x.k(), 0, h));
            for (int qb = 0; qb < ours.length; qb++) {
                final boolean[] row = ref[h][qb];
                int[] want = java.util.stream.IntStream.range(0, row.length).filter(j -> row[j]).toArray();
                assertArrayEquals(want, ours[qb], "head " + h + " query block " + qb);
            }
        }
        SparsePlan plan = xa.plan(ctx, x.q(), x.k());
        Definitions.assertTokenSet(plan, (b, h, r, key) -> key <= r && ref[h][r / blockSize][key / blockSize], xa.name());
    }
}
