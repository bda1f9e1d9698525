package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import org.junit.jupiter.api.Test;

/** Plans' block arithmetic against counts made key by key and row by row. */
class PlansTest {

    private static PlanContext ctx(int batch, int heads, int nq, int nk, int dim, boolean causal) {
        return PlanContext.of(AttentionShape.of(batch, heads, nq, nk, dim), Options.defaults().withCausal(causal));
    }

    /** The block of blockSize keys that holds the row's position; the last block for a position after the keys. */
    @Test
    void ownBlockHoldsTheRowsPosition() {
        for (int nq : new int[] {1, 7, 40}) {
            for (int nk : new int[] {1, 40, 100}) {
                if (nq > nk) {
                    continue;
                }
                for (int bs : new int[] {1, 3, 16, 128}) {
                    PlanContext c = ctx(1, 1, nq, nk, 8, true);
                    int blocks = 0;
                    for (int k0 = 0; k0 < nk; k0 += bs) {
                        blocks++;
                    }
                    for (int r = 0; r < nq; r++) {
                        long p = (long) r + c.queryOffset();
                        int expected = -1;
                        for (int b = 0; b < blocks; b++) {
                            long k0 = (long) b * bs;
                            if (k0 <= p && p < k0 + bs) {
                                expected = b;
                            }
                        }
                        if (p >= (long) blocks * bs) {
                            expected = blocks - 1;
                        }
                        assertEquals(expected, Plans.ownBlock(c, r, blocks, bs), "nq " + nq + " nk " + nk + " bs " + bs + " r " + r);
                    }
                }
            }
        }
    }

    @Test
    void scoreMacsCountRowsOrPooledRowsAgainstKeyBlocks() {
        for (boolean causal : new boolean[] {true, false}) {
            for (int nq : new int[] {1, 65, 200}) {
                for (int bs : new int[] {1, 16, 64}) {
                    int nk = nq + 37;
                    int batch = 2;
                    int heads = 3;
                    int dim = 8;
                    PlanContext c = ctx(batch, heads, nq, nk, dim, causal);
                    double half = causal ? 0.5 : 1;
                    long keyBlocks = 0;
                    for (int k0 = 0; k0 < nk; k0 += bs) {
                        keyBlocks++;
                    }
                    long queryBlocks = 0;
                    for (int r0 = 0; r0 < nq; r0 += bs) {
                        queryBlocks++;
                    }
                    double rowMacs = 0;
                    double pooledMacs = 0;
                    for (int s = 0; s < batch * heads; s++) {
                        rowMacs += (double) nq * keyBlocks * dim * half;
                        pooledMacs += (double) queryBlocks * keyBlocks * dim * half + (double) (nq + nk) * dim;
                    }
                    String what = "causal " + causal + " nq " + nq + " bs " + bs;
                    assertEquals(rowMacs, Plans.rowBlockScoreMacs(c, bs), 1e-9 * rowMacs, what);
                    assertEquals(pooledMacs, Plans.pooledBlockScoreMacs(c, bs), 1e-9 * pooledMacs, what);
                }
            }
        }
    }
}
