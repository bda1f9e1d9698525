package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.sparsa.patterns.compose.MInferenceConfig;
import dev.sparsa.patterns.compose.PerLayer;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Sparsa's MInference patterns against ports of MInference's own code ({@link MInferencePort}:
 * github.com/microsoft/MInference @ fb56c917f618e8645f1cfc37535afd7424d78f0d, files named there), on
 * the case MInference runs: causal prefill, equal query and key lengths, 64×64 blocks.
 */
class MInferencePortTest {

    @Test
    void blockSparseAdmitsWhatBuildBlockIndexAndItsKernelAdmit() {
        int compared = 0;
        int total = 0;
        boolean sawDiagonalLeftOut = false;
        for (int n : new int[] {200, 256, 448, 640}) {
            for (int topK : new int[] {1, 2, 3, 5}) {
                PlanContext ctx = Definitions.ctx(1, 2, 2, n, n, 16, true, 64, 64);
                Problems.Qkv qkv = Problems.qkv(n * 31L + topK, ctx.shape(), DType.F32, Layout.BHSD);
                SparsePlan plan = Patterns.minferenceBlockSparse(topK).plan(ctx, qkv.q(), qkv.k());
                for (int h = 0; h < 2; h++) {
                    float[] q = Vectors.rows(qkv.q(), 0, h);
                    float[] k = Vectors.rows(qkv.k(), 0, h);
                    MInferencePort.BlockIndex index = MInferencePort.buildBlockIndex(q, k, n, 16, topK);
                    int[][] got = TokenSets.keys(plan, 0, h);
                    for (int r = 0; r < n; r++) {
                        int m = r / 64;
                        total++;
                        if (index.gap()[m] < 1e-4) {
                            continue; // torch.topk's choice among near-equal scores is unspecified
                        }
                        compared++;
                        TreeSet<Integer> want = new TreeSet<>();
                        for (int key = 0; key < n; key++) {
                            if (MInferencePort.blockSparseAdmits(index, r, key)) {
                                want.add(key);
                            }
                        }
                        sawDiagonalLeftOut |= !want.contains(r);
                        assertEquals(want.toString(), Arrays.toString(got[r]),
                                "n " + n + " top " + topK + " head " + h + " row " + r);
                    }
                }
            }
        }
        assertTrue(compared >= 0.8 * total, "compared " + compared + " of " + total + " rows");
        assertTrue(sawDiagonalLeftOut, "some query block's diagonal lost to earlier blocks (none is forced)");
    }

    @Test
    void blockSparseConfigHeadsKeepTheTop100() {
        PerLayer layers = Patterns.minferenceConfig("[{\"0\": [\"block_sparse\", 10, 1, 0.1]}]", VsSemantics.EXACT);
        PlanContext ctx = Definitions.ctx(1, 1, 1, 64 * 120, 64 * 120, 8, true, 64, 64);
        Problems.Qkv qkv = Problems.qkv(12, ctx.shape(), DType.F32, Layout.BHSD);
        SparsePlan fromConfig = layers.forLayer(0).plan(ctx, qkv.q(), qkv.k());
        SparsePlan top100 = Patterns.minferenceBlockSparse(MInferenceConfig.BLOCK_SPARSE_TOP_K).plan(ctx, qkv.q(), qkv.k());
        SparsePlan top10 = Patterns.minferenceBlockSparse(10).plan(ctx, qkv.q(), qkv.k());
        assertEquals(100, MInferenceConfig.BLOCK_SPARSE_TOP_K);
        assertEquals(top100.pairsAdmitted(), fromConfig.pairsAdmitted());
        assertTrue(top10.pairsAdmitted() < fromConfig.pairsAdmitted(), "vertical_size is not the block budget");
    }

    /** Sorted distinct random picks in [0, bound), always with {@code must}. */
    private static int[] picks(SplittableRandom rnd, int count, int bound, int... must) {
        TreeSet<Integer> s = new TreeSet<>();
        for (int m : must) {
            s.add(m);
        }
        while (s.size() < Math.min(bound, count + must.length)) {
            s.add(rnd.nextInt(bound));
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    private static int[] descending(int[] ascending) {
        int[] d = new int[ascending.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = ascending[ascending.length - 1 - i];
        }
        return d;
    }

    @Test
    void blockExpandedAdmitsWhatConvertVerticalSlashIndexesAndItsKernelAdmit() {
        SplittableRandom rnd = new SplittableRandom(42);
        for (int n : new int[] {64, 100, 320, 700, 1000}) {
            PlanContext ctx = Definitions.ctx(1, 1, 1, n, n, 16, true, 64, 64);
            for (int trial = 0; trial < 6; trial++) {
                // MInference's estimator always keeps the most local diagonals and the first columns
                int[] cols = picks(rnd, 3 + rnd.nextInt(40), n, 0, 1, 2);
                int[] diags = picks(rnd, rnd.nextInt(30), n, 0, 1, 2, 3);
                SparsePlan plan = Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED).plan(ctx);
                MInferencePort.VsIndex[] index = new MInferencePort.VsIndex[(n + 63) / 64];
                for (int m = 0; m < index.length; m++) {
                    index[m] = MInferencePort.convertVerticalSlashIndexes(cols, descending(diags), m * 64, 64, 64);
                }
                assertTokenSet(plan, (b, h, r, key) -> MInferencePort.verticalSlashAdmits(index[r / 64], r, key, n, 64),
                        "block-expanded n " + n + " columns " + Arrays.toString(cols) + " diagonals " + Arrays.toString(diags));
            }
        }
    }

    @Test
    void blockExpandedDiffersFromTheGridAlignedOption() {
        PlanContext ctx = Definitions.ctx(1, 1, 1, 256, 256, 16, true, 64, 64);
        int[] cols = {0, 1, 2, 200};
        int[] diags = {0, 1, 2, 3, 100};
        SparsePlan mi = Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED).plan(ctx);
        SparsePlan grid = Patterns.verticalSlash(cols, diags, VsSemantics.GRID_EXPANDED).plan(ctx);
        int[][] a = TokenSets.keys(mi, 0, 0);
        int[][] b = TokenSets.keys(grid, 0, 0);
        boolean differ = false;
        for (int r = 0; r < 256; r++) {
            differ |= !Arrays.equals(a[r], b[r]);
        }
        if (!differ) {
            fail("the MInference ranges and the grid-aligned widening must differ on off-grid diagonals");
        }
    }
}
