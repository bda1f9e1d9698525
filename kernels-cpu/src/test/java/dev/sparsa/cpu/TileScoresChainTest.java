package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * {@link TileMath#scores} of the vector flavour against its definition to the bit: every score is one
 * fused multiply-add chain over the head dimension in order, {@code s = fma(q[d], k[d], s)} from 0,
 * whichever micro-kernel (6 keys × 4 or × 2 row-vectors, 4 × 2, tails) computed it. Row counts from
 * one vector to several blocks of four, key counts that leave every tail.
 */
class TileScoresChainTest {

    @Test
    void everyScoreIsOneFmaChainInChannelOrder() {
        TileMath math = TileMathProvider.best();
        if (math.flavour() != KernelFlavour.VECTOR) {
            throw new org.opentest4j.TestAbortedException("the Vector API is not readable in this JVM");
        }
        int lanes = math.lanes();
        SplittableRandom rnd = new SplittableRandom(11);
        for (int rowsPad : new int[] {lanes, 2 * lanes, 3 * lanes, 4 * lanes, 5 * lanes, 8 * lanes}) {
            for (int n : new int[] {1, 3, 4, 5, 6, 7, 11, 12, 13, 64}) {
                for (int dim : new int[] {8, 40, 128}) {
                    float[] qT = new float[dim * rowsPad];
                    for (int i = 0; i < qT.length; i++) {
                        qT[i] = (float) rnd.nextDouble(-1, 1);
                    }
                    int ldK = dim + 3; // rows of K at odd offsets
                    float[] k = new float[n * ldK];
                    int[] kOff = new int[n];
                    for (int j = 0; j < n; j++) {
                        kOff[j] = j * ldK + 1;
                        for (int d = 0; d < dim; d++) {
                            k[kOff[j] + d] = (float) rnd.nextDouble(-1, 1);
                        }
                    }
                    float[] s = new float[n * rowsPad];
                    math.scores(qT, rowsPad, rowsPad, k, kOff, dim, n, s, rowsPad);
                    for (int j = 0; j < n; j++) {
                        for (int r = 0; r < rowsPad; r++) {
                            float want = 0f;
                            for (int d = 0; d < dim; d++) {
                                want = Math.fma(qT[d * rowsPad + r], k[kOff[j] + d], want);
                            }
                            assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(s[j * rowsPad + r]),
                                    () -> math.description() + ": rowsPad " + rowsPad + ", n " + n + ", dim " + dim);
                        }
                    }
                }
            }
        }
    }
}
