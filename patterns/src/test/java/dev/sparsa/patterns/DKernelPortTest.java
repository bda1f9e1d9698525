package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.strided.S2Strided;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import org.junit.jupiter.api.Test;

/**
 * S2-Attention against a port of DKernel's {@code get_sparse_attn_mask} ({@code dkernel/utils.py} of
 * github.com/linxihui/dkernel at commit 0d4e90e4ead038c8a0f318b9260522f0ca51f554): the block mask
 * over absolute positions, expanded to tokens ({@code torch.kron}) under the causal mask.
 */
class DKernelPortTest {

    /**
     * {@code get_sparse_attn_mask(num_heads, seqlen, block_size, local_blocks, vert_stride, homo_head,
     * num_kv_heads, ..., head_sliding_step, head_sliding_offset, num_dense_heads, kv_seqlen, causal)}
     * with {@code past_len} and the chunk starts 0, returning {@code block_mask} as
     * {@code [heads][q blocks][kv blocks]} ({@code headSlidingStep} null for the default).
     */
    static boolean[][][] getSparseAttnMask(int numHeads, int seqlen, int blockSize, int localBlocks, int vertStride,
                                          boolean homoHead, Integer numKvHeads, Integer headSlidingStep,
                                          int headSlidingOffset, int numDenseHeads, int kvSeqlen, boolean causal) {
        if (homoHead) {
            numHeads = 1;
            if (numDenseHeads != 0) {
                throw new AssertionError("Cannot have dense head if stride pattern for heads is homogeneous.");
            }
        }
        String vertPositionType = causal ? "absolute" : "relative";
        int kvHeads = numKvHeads != null ? numKvHeads : numHeads;
        int numSparseHeads = kvHeads - numDenseHeads;
        int numQPerKv = numHeads / kvHeads;
        int localLeft = localBlocks;
        int localRight = causal ? 1 : localBlocks;
        int blocks = (seqlen + blockSize - 1) / blockSize;
        int kvBlocks = (kvSeqlen + blockSize - 1) / blockSize;
        int step = headSlidingStep != null ? headSlidingStep : Math.max(1, (int) ((double) vertStride / numHeads));
        boolean[][][] mask = new boolean[kvHeads * numQPerKv][blocks][kvBlocks];
        int row = 0;
        for (int h = 0; h < kvHeads; h++) {
            for (int rep = 0; rep < numQPerKv; rep++, row++) {
                for (int qPos = 0; qPos < blocks; qPos++) {
                    for (int kPos = 0; kPos < kvBlocks; kPos++) {
                        boolean keep;
                        if (vertPositionType.equals("absolute")) {
                            boolean vert = h < numSparseHeads ? (kPos + h * step + headSlidingOffset) % vertStride == 0 : true;
                            boolean local = (qPos - kPos) < localLeft && (kPos - qPos) < localRight;
                            keep = vert || local;
                        } else {
                            int left = (qPos - kPos) - localLeft + 1;
                            left = left * (left > 0 ? 1 : 0);
                            int right = (kPos - qPos) - localRight + 1;
                            right = right * (right > 0 ? 1 : 0);
                            keep = h < numSparseHeads ? (left + right) % vertStride == 0 : true;
                        }
                        if (causal) {
                            keep = qPos >= kPos && keep;
                        }
                        mask[row][qPos][kPos] = keep;
                    }
                }
            }
        }
        return mask;
    }

    private static PlanContext ctx(int qHeads, int kvHeads, int nq, int nk, boolean causal, int rows, int cols) {
        return PlanContext.of(new AttentionShape(1, qHeads, kvHeads, nq, nk, 8, 8),
                Options.defaults().withCausal(causal).withGeometry(new TileGeometry(rows, cols)));
    }

    @Test
    void s2AdmitsWhatGetSparseAttnMaskAdmits() {
        int[][] heads = {{4, 4}, {4, 2}, {2, 1}, {8, 2}, {1, 1}};
        int cases = 0;
        for (boolean causal : new boolean[] {true, false}) {
            for (int[] hk : heads) {
                for (int blockSize : new int[] {16, 24, 64}) {
                    for (int[] nqk : new int[][] {{200, 200}, {70, 230}}) {
                        PlanContext ctx = ctx(hk[0], hk[1], nqk[0], nqk[1], causal, 16, 16);
                        for (int stride : new int[] {2, 3, 8}) {
                            for (int local : new int[] {1, 2}) {
                                for (int[] v : new int[][] {{0, 0, 0, 0}, {1, 0, 0, 0}, {3, 2, 0, 0}, {0, 1, 1, 0},
                                    {0, 0, 0, 1}}) {
                                    int step = v[0], offset = v[1], dense = Math.min(v[2], hk[1]);
                                    boolean homo = v[3] == 1;
                                    S2Strided s2 = new S2Strided(stride, local, step, offset, dense, homo, blockSize);
                                    SparsePlan plan = s2.plan(ctx);
                                    int past = ctx.queryOffset();
                                    boolean[][][] m = getSparseAttnMask(hk[0], nqk[1], blockSize, local, stride, homo,
                                            homo ? null : hk[1], step == 0 ? null : step, offset, dense, nqk[1], causal);
                                    assertTokenSet(plan, (b, h, r, k) -> {
                                        long p = (long) r + past;
                                        boolean[][] mh = m[homo ? 0 : h];
                                        return (!causal || k <= p) && mh[(int) (p / blockSize)][k / blockSize];
                                    }, s2.name() + " heads " + hk[0] + "/" + hk[1] + (causal ? " causal" : ""));
                                    cases++;
                                }
                            }
                        }
                    }
                }
            }
        }
        assertTrue(cases > 500);
    }

    @Test
    void fewerHeadsThanTheStrideSpreadTheirOffsets() {
        S2Strided s2 = Patterns.s2Strided(8, 1);
        assertEquals(4, s2.stepFor(2));
        assertEquals(0, s2.residueOf(0, 2, 2));
        assertEquals(4, s2.residueOf(1, 2, 2));
        // query heads of one GQA group read the same blocks; dense heads are counted in KV heads
        S2Strided dense = new S2Strided(4, 1, 1, 0, 1, false, 64);
        assertEquals(-1, dense.residueOf(1, 4, 2));
        assertThrows(IllegalArgumentException.class,
                () -> new S2Strided(4, 1, 1, 0, 2, false, 64).plan(ctx(4, 1, 64, 64, true, 16, 16)));
        SparsePlan p = dense.plan(ctx(4, 2, 256, 256, true, 16, 16));
        assertTrue(p.layout(0, 0) == p.layout(0, 1) && p.layout(0, 2) == p.layout(0, 3) && p.layout(0, 0) != p.layout(0, 2));
    }

    @Test
    void strideHeterogeneousKvHeadsCoverEveryCausalBlock() {
        for (int stride : new int[] {2, 3, 4}) {
            PlanContext ctx = ctx(stride, stride, 300, 300, true, 16, 16);
            SparsePlan plan = new S2Strided(stride, 0, 1, 0, 0, false, 16).plan(ctx);
            for (int t = 0; t < ctx.queryTiles(); t++) {
                java.util.Set<Integer> covered = new java.util.HashSet<>();
                for (int h = 0; h < stride; h++) {
                    HeadLayout l = plan.layout(0, h);
                    for (int i = l.fullStart(t); i < l.fullEnd(t); i++) {
                        covered.add(l.fullBlock(i));
                    }
                    for (int i = l.partialStart(t); i < l.partialEnd(t); i++) {
                        covered.add(l.partialBlock(i));
                    }
                }
                assertEquals(Math.min(t, ctx.keyBlocks() - 1) + 1, covered.size(), "tile " + t + " stride " + stride);
            }
            assertTrue(plan.layout(0, 0).pairsAdmitted() < 0.6 * Patterns.dense().plan(ctx).layout(0, 0).pairsAdmitted());
        }
    }
}
