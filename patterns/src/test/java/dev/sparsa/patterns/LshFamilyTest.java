package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;
import static dev.sparsa.patterns.Definitions.causalOk;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.lsh.AngularLsh;
import dev.sparsa.patterns.lsh.ReformerLsh;
import dev.sparsa.patterns.lsh.SortLsh;
import dev.sparsa.patterns.support.Vectors;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * LSH patterns against definitions computed independently here: the bucket of a vector is
 * recomputed from the seeded projections' signs (hash equality is exact integer comparison, so no
 * near-tie issue beyond the sign of a dot product, which both sides compute identically in f32).
 */
class LshFamilyTest {

    /** Indices sorted by (bucket, index), from hashes recomputed here. */
    private static int[] sortedOrder(AngularLsh lsh, float[] rows, int n) {
        return IntStream.range(0, n).boxed()
                .sorted(Comparator.<Integer>comparingInt(i -> lsh.hash(rows, i)).thenComparingInt(i -> i))
                .mapToInt(Integer::intValue).toArray();
    }

    @Test
    void hashingIsSeededAndAngular() {
        AngularLsh a = new AngularLsh(8, 16, 42);
        AngularLsh b = new AngularLsh(8, 16, 42);
        float[] x = new float[16];
        for (int i = 0; i < 16; i++) {
            x[i] = (float) Math.sin(i + 1);
        }
        float[] scaled = x.clone();
        for (int i = 0; i < 16; i++) {
            scaled[i] *= 3.5f;
        }
        assertEquals(a.hash(x, 0), b.hash(x, 0), "same seed, same hash");
        assertEquals(a.hash(x, 0), a.hash(scaled, 0), "a positive scale does not change the angle");
        float[] neg = x.clone();
        for (int i = 0; i < 16; i++) {
            neg[i] = -neg[i];
        }
        assertEquals(0xFF, a.hash(x, 0) ^ a.hash(neg, 0), "the opposite vector flips every bit");
    }

    @Test
    void sortLshMatchesTheSortedBlockDiagonalWithWeightedSamples() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] p : new int[][] {{3, 8, 0}, {4, 5, 6}, {2, 100, 3}}) {
                SortLsh lsh = new SortLsh(p[0], p[1], p[2], 17);
                Problems.Qkv qkv = Problems.qkv(5, ctx.shape(), DType.F32, Layout.BHSD);
                SparsePlan plan = lsh.plan(ctx, qkv.q(), qkv.k());
                int chunk = Math.min(p[1], ctx.geometry().tileRows());
                int nq = ctx.queryLength();
                int nk = ctx.keyLength();
                int chunks = (nq + chunk - 1) / chunk;
                for (int b = 0; b < ctx.shape().batch(); b++) {
                    for (int h = 0; h < ctx.shape().qHeads(); h++) {
                        AngularLsh hash = new AngularLsh(p[0], ctx.shape().headDim(), 17);
                        float[] q = Vectors.rows(qkv.q(), b, h);
                        float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                        int[] qo = sortedOrder(hash, q, nq);
                        int[] ko = sortedOrder(hash, k, nk);
                        int[] qChunk = new int[nq];
                        int[] kChunk = new int[nk];
                        for (int i = 0; i < nq; i++) {
                            qChunk[qo[i]] = i / chunk;
                        }
                        for (int c = 0; c < chunks; c++) {
                            for (long i = (long) c * nk / chunks; i < (long) (c + 1) * nk / chunks; i++) {
                                kChunk[ko[(int) i]] = c;
                            }
                        }
                        List<TreeMap<Integer, Float>> got = TokenSets.of(plan, b, h);
                        int slice = b * ctx.shape().qHeads() + h;
                        for (int r = 0; r < nq; r++) {
                            int c = qChunk[r];
                            TreeMap<Integer, Float> want = new TreeMap<>();
                            for (int key = 0; key < nk; key++) {
                                if (kChunk[key] == c && causalOk(ctx, r, key)) {
                                    want.put(key, 0f);
                                }
                            }
                            int[] ownKeys = IntStream.range(0, nk).filter(key -> kChunk[key] == c).toArray();
                            for (int key : lsh.sampled(slice, c, ownKeys, nk)) {
                                if (causalOk(ctx, r, key)) {
                                    want.put(key, (float) Math.log((double) nk / p[2]));
                                }
                            }
                            assertEquals(want, got.get(r), "sortLSH " + java.util.Arrays.toString(p) + " slice " + slice
                                    + " row " + r + " in " + ctx);
                        }
                    }
                }
            }
        }
    }

    @Test
    void sampledKeysAreSeededAndOutsideTheChunk() {
        SortLsh lsh = new SortLsh(3, 8, 20, 9);
        int[] chunk = {1, 5, 9, 40};
        int[] s = lsh.sampled(0, 2, chunk, 100);
        assertTrue(s.length > 0 && s.length <= 20);
        for (int key : s) {
            assertTrue(java.util.Arrays.binarySearch(chunk, key) < 0 && key >= 0 && key < 100);
        }
        assertEquals(java.util.Arrays.toString(s), java.util.Arrays.toString(lsh.sampled(0, 2, chunk, 100)));
    }

    @Test
    void reformerAdmitsEachPairOfAnyRoundOnce() {
        for (PlanContext ctx : Definitions.sweep()) {
            for (int[] p : new int[][] {{1, 3, 8}, {2, 3, 6}, {3, 2, 16}}) {
                int rounds = p[0], bits = p[1];
                ReformerLsh lsh = new ReformerLsh(rounds, bits, p[2], 23);
                Problems.Qkv qkv = Problems.qkv(6, ctx.shape(), DType.F32, Layout.BHSD);
                SparsePlan plan = lsh.plan(ctx, qkv.q(), qkv.k());
                int chunk = Math.min(p[2], ctx.geometry().tileRows());
                int nq = ctx.queryLength();
                int nk = ctx.keyLength();
                int chunks = (nq + chunk - 1) / chunk;
                int heads = ctx.shape().qHeads();
                int[][][][] qc = new int[ctx.shape().batch()][heads][rounds][nq];
                int[][][][] kc = new int[ctx.shape().batch()][heads][rounds][nk];
                for (int b = 0; b < ctx.shape().batch(); b++) {
                    for (int h = 0; h < heads; h++) {
                        float[] q = Vectors.rows(qkv.q(), b, h);
                        float[] k = Vectors.rows(qkv.k(), b, ctx.shape().kvHeadOf(h));
                        for (int r = 0; r < rounds; r++) {
                            AngularLsh hash = new AngularLsh(bits, ctx.shape().headDim(), 23 + 0x9E3779B97F4A7C15L * (r + 1));
                            int[] qo = sortedOrder(hash, q, nq);
                            int[] ko = sortedOrder(hash, k, nk);
                            for (int i = 0; i < nq; i++) {
                                qc[b][h][r][qo[i]] = i / chunk;
                            }
                            for (int c = 0; c < chunks; c++) {
                                for (long i = (long) c * nk / chunks; i < (long) (c + 1) * nk / chunks; i++) {
                                    kc[b][h][r][ko[(int) i]] = c;
                                }
                            }
                        }
                    }
                }
                // TokenSets.of (inside assertTokenSet) also fails if any pair is admitted twice
                assertTokenSet(plan, (b, h, row, key) -> {
                    if (!causalOk(ctx, row, key)) {
                        return false;
                    }
                    for (int r = 0; r < rounds; r++) {
                        int d = qc[b][h][r][row] - kc[b][h][r][key];
                        if (d == 0 || d == 1) {
                            return true;
                        }
                    }
                    return false;
                }, "reformer " + java.util.Arrays.toString(p));
            }
        }
    }
}
