package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.kv.DecodeScorer;
import dev.sparsa.kv.KvCache;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Top-k's key scores for several KV heads at once, in pieces of keys, have the bits of the one-head
 * scores over the whole range: on paged pools read whole (pages smaller and larger than a block, and
 * larger than the pieces' 256-key alignment), f16 and e4m3 pools among them, and on contiguous caches (scored
 * head by head), with every vector flavour the machine has and the plain loops.
 */
class CpuKeyScoresTest {

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16", "F16", "E4M3"})
    void piecesAcrossHeadsHaveTheBitsOfOneHeadOverTheRange(DType dtype) {
        SplittableRandom rnd = new SplittableRandom(71);
        int kvHeads = 3;
        int dim = 40;
        for (int pageSize : new int[] {16, 128, 512}) {
            KvProblems.Caches c = KvProblems.caches(72 + pageSize, dtype, new int[] {700, 1, 1333}, kvHeads, dim, 24,
                    pageSize, 150);
            for (int rows : new int[] {1, 3}) {
                Tensor q = DecodeFixtures.query(rows * 5 + pageSize, c.paged(), 2 * kvHeads, rows);
                for (KvCache cache : List.of(c.paged(), c.contiguous())) {
                    TileMath tiles = TileMathProvider.best();
                    for (DecodeMath math : List.of(DecodeMathProvider.forFlavour(tiles.flavour()),
                            DecodeMathProvider.forFlavour(KernelFlavour.SCALAR))) {
                        DecodeScorer scorer = new CpuDecodeScorer(math, tiles, q, cache);
                        for (int trial = 0; trial < 6; trial++) {
                            int b = trial % 2 == 0 ? 2 : 0;
                            int length = cache.lengths()[b];
                            int from = rnd.nextInt(length / 3);
                            int to = length - rnd.nextInt(length / 3);
                            int[] heads = trial % 3 == 0 ? new int[] {2, 0} : new int[] {0, 1, 2};
                            float[][] pieces = new float[heads.length][to - from];
                            for (int k0 = from; k0 < to; ) {
                                int k1 = Math.min(to, k0 + 1 + rnd.nextInt(300));
                                scorer.keyScores(b, heads, k0, k1, pieces, from);
                                k0 = k1;
                            }
                            for (int i = 0; i < heads.length; i++) {
                                float[] whole = new float[to - from];
                                scorer.keyScores(b, heads[i], from, to, whole);
                                String what = dtype + " page " + pageSize + " rows " + rows + " " + cache.getClass()
                                        .getSimpleName() + " " + math.flavour() + " keys [" + from + ", " + to
                                        + ") head " + heads[i];
                                assertArrayEquals(whole, pieces[i], what);
                            }
                        }
                    }
                }
            }
        }
    }
}
