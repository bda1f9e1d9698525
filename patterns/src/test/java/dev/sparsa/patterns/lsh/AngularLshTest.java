package dev.sparsa.patterns.lsh;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The vectorised hashes are bitwise the scalar definition, and that definition is the sign of x · r. */
class AngularLshTest {
    @Test
    void hashAllIsBitwiseTheScalarHash() {
        SplittableRandom rnd = new SplittableRandom(4);
        for (int dim : new int[] {1, 5, 8, 12, 16, 20, 128}) {
            for (int bits : new int[] {1, 3, 4, 8, 13, 30}) {
                for (int n : new int[] {0, 1, 9, 40}) {
                    float[] rows = new float[n * dim];
                    for (int i = 0; i < rows.length; i++) {
                        // some exact zeros so that sums of exactly 0 (not > 0) occur
                        rows[i] = rnd.nextInt(5) == 0 ? 0f : (float) rnd.nextGaussian();
                    }
                    if (n > 0) {
                        java.util.Arrays.fill(rows, 0, dim, 0f);
                    }
                    AngularLsh lsh = new AngularLsh(bits, dim, rnd.nextLong());
                    int[] all = lsh.hashAll(rows, n);
                    assertEquals(n, all.length);
                    for (int r = 0; r < n; r++) {
                        assertEquals(lsh.hash(rows, r), all[r], "dim=" + dim + " bits=" + bits + " row " + r);
                    }
                }
            }
        }
    }

    /**
     * A projection's sign is what a bit records: negating a row negates every running sum exactly
     * (fused multiply-adds round symmetrically), so every bit flips unless a projection is exactly 0.
     */
    @Test
    void negatingARowFlipsEveryBit() {
        SplittableRandom rnd = new SplittableRandom(9);
        int dim = 24;
        int bits = 12;
        AngularLsh lsh = new AngularLsh(bits, dim, 77);
        float[] rows = new float[200 * dim];
        for (int i = 0; i < rows.length; i++) {
            rows[i] = (float) rnd.nextGaussian();
        }
        int[] h = lsh.hashAll(rows, 200);
        for (int r = 0; r < 200; r++) {
            float[] neg = new float[dim];
            for (int x = 0; x < dim; x++) {
                neg[x] = -rows[r * dim + x];
            }
            assertEquals((1 << bits) - 1, h[r] ^ lsh.hash(neg, 0), "row " + r);
        }
        assertThrows(IllegalArgumentException.class, () -> lsh.hashAll(new float[5], 1));
    }

    /**
     * Several functions hashed in one pass (the paired six-row kernel, the lone eight-row group, the
     * tail rows, and the tensor path's 48-row blocks) give each function's scalar hash bitwise.
     */
    @Test
    void aFamilyHashedTogetherIsEachFunctionsHash() {
        SplittableRandom rnd = new SplittableRandom(11);
        int[][] bitSets = {{8, 8}, {8, 8, 8}, {3}, {13, 5}, {30, 1, 8}, {16}};
        for (int dim : new int[] {1, 7, 128}) {
            for (int[] bitSet : bitSets) {
                for (int n : new int[] {0, 5, 6, 13, 47, 48, 101}) {
                    float[] rows = new float[n * dim];
                    for (int i = 0; i < rows.length; i++) {
                        rows[i] = rnd.nextInt(5) == 0 ? 0f : (float) rnd.nextGaussian();
                    }
                    java.util.List<AngularLsh> family = new java.util.ArrayList<>();
                    for (int b : bitSet) {
                        family.add(new AngularLsh(b, dim, rnd.nextLong()));
                    }
                    int[][] flat = AngularLsh.hashAll(family, rows, n);
                    int[][] fromTensor = AngularLsh.hashAll(family, dev.sparsa.tensor.Tensor.of(rows.clone(), 1, 1, n, dim), 0, 0);
                    for (int f = 0; f < family.size(); f++) {
                        for (int r = 0; r < n; r++) {
                            String where = "dim=" + dim + " bits=" + java.util.Arrays.toString(bitSet) + " f=" + f + " row " + r;
                            assertEquals(family.get(f).hash(rows, r), flat[f][r], where);
                            assertEquals(flat[f][r], fromTensor[f][r], where + " (tensor)");
                        }
                    }
                }
            }
        }
        assertThrows(IllegalArgumentException.class, () -> AngularLsh.hashAll(java.util.List.of(), new float[0], 0));
        assertThrows(IllegalArgumentException.class, () -> AngularLsh.hashAll(
                java.util.List.of(new AngularLsh(8, 4, 1), new AngularLsh(8, 5, 1)), new float[20], 1));
    }
}
