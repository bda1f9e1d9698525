package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Vectorised scores are bitwise those of the scalar dot product, for any width and key count. */
class KeyPanelsTest {
    /**
     * A range of keys from a panel boundary: its scores are the scalar dot products (up to 17
     * queries, so every kernel runs), and its rows laid out flat again are the rows packed.
     */
    @Test
    void rangesScoreAndUnpackAsTheWholeRows() {
        SplittableRandom rnd = new SplittableRandom(5);
        int lanes = KeyPanels.paddedLength(1);
        for (int d : new int[] {1, 3, 16, 33, 128}) {
            for (int n : new int[] {1, 17, 64, 101, 300}) {
                float[] k = new float[n * d];
                for (int i = 0; i < k.length; i++) {
                    k[i] = Float.intBitsToFloat(rnd.nextInt(0x7f000000)); // finite, any exponent below the top
                }
                float[] q = new float[17 * d];
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                KeyPanels p = KeyPanels.of(k, n, d);
                for (int first = 0; first < n; first += lanes * (1 + rnd.nextInt(3))) {
                    int count = rnd.nextInt(n - first + 1);
                    int queries = 1 + rnd.nextInt(17);
                    int stride = KeyPanels.paddedLength(count) + 3;
                    float[] out = new float[queries * stride + lanes];
                    p.dotsFrom(q, 0, queries, first, count, out, stride);
                    for (int j = 0; j < queries; j++) {
                        for (int key = first; key < first + count; key++) {
                            assertEquals(Float.floatToRawIntBits(Vectors.dot(q, j, k, key, d)),
                                    Float.floatToRawIntBits(out[j * stride + key - first]),
                                    "d=" + d + " n=" + n + " first=" + first + " query " + j + " key " + key);
                        }
                    }
                    float[] rows = new float[KeyPanels.paddedLength(count) * d];
                    java.util.Arrays.fill(rows, Float.NaN);
                    p.rows(first, count, rows);
                    for (int i = 0; i < rows.length; i++) {
                        int key = first + i / d;
                        float want = i < count * d || key < n ? k[Math.min(key, n - 1) * d + i % d] : 0f;
                        assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(rows[i]),
                                "rows d=" + d + " n=" + n + " first=" + first + " i=" + i);
                        assertEquals(Float.floatToRawIntBits(k[Math.min(key, n - 1) * d + i % d]),
                                Float.floatToRawIntBits(p.get(Math.min(key, n - 1), i % d)), "get");
                    }
                }
                int bad = lanes > 1 ? 1 : -1;
                assertThrows(IllegalArgumentException.class, () -> p.dotsFrom(q, 0, 1, bad, 0, new float[lanes], lanes));
                assertThrows(IllegalArgumentException.class, () -> p.rows(0, n + 1, new float[(n + lanes + 1) * d]));
            }
        }
    }

    @Test
    void dotsAreBitwiseScalarDots() {
        SplittableRandom rnd = new SplittableRandom(3);
        for (int d : new int[] {1, 3, 4, 7, 16, 33, 128}) {
            for (int n : new int[] {0, 1, 5, 8, 17, 64, 101}) {
                float[] k = new float[n * d];
                float[] q = new float[3 * d];
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 3));
                }
                for (int i = 0; i < q.length; i++) {
                    q[i] = (float) rnd.nextGaussian();
                }
                KeyPanels p = KeyPanels.of(k, n, d);
                // the tensor path (full panels gathered, the last one copied) scores the same
                KeyPanels fromTensor = KeyPanels.of(dev.sparsa.tensor.Tensor.of(k.clone(), 1, 1, n, d), 0, 0);
                float[] viaArray = new float[KeyPanels.paddedLength(n)];
                float[] viaTensor = new float[KeyPanels.paddedLength(n)];
                p.dots(q, 0, n, viaArray);
                fromTensor.dots(q, 0, n, viaTensor);
                for (int key = 0; key < n; key++) {
                    assertEquals(Float.floatToRawIntBits(viaArray[key]), Float.floatToRawIntBits(viaTensor[key]), "tensor key " + key);
                }
                for (int row = 0; row < 3; row++) {
                    for (int count : new int[] {n, n / 2}) {
                        float[] out = new float[KeyPanels.paddedLength(count)];
                        p.dots(q, row, count, out);
                        for (int key = 0; key < count; key++) {
                            assertEquals(Float.floatToRawIntBits(Vectors.dot(q, row, k, key, d)), Float.floatToRawIntBits(out[key]),
                                    "d=" + d + " n=" + n + " row=" + row + " key=" + key);
                        }
                        // several queries at once (pairs and a leftover), written with a stride
                        int queries = 3 - row;
                        int stride = KeyPanels.paddedLength(count) + 8;
                        float[] many = new float[queries * stride];
                        p.dots(q, row, queries, count, many, stride);
                        for (int j = 0; j < queries; j++) {
                            for (int key = 0; key < count; key++) {
                                assertEquals(Float.floatToRawIntBits(Vectors.dot(q, row + j, k, key, d)),
                                        Float.floatToRawIntBits(many[j * stride + key]), "query " + (row + j) + " key " + key);
                            }
                        }
                        // per-query counts (causal pooled queries): scores below each count are exact
                        int[] counts = new int[queries];
                        for (int j = 0; j < queries; j++) {
                            counts[j] = count == 0 ? 0 : rnd.nextInt(count + 1);
                        }
                        float[] some = new float[queries * stride];
                        p.dots(q, row, queries, count, some, stride, counts);
                        for (int j = 0; j < queries; j++) {
                            for (int key = 0; key < counts[j]; key++) {
                                assertEquals(Float.floatToRawIntBits(Vectors.dot(q, row + j, k, key, d)),
                                        Float.floatToRawIntBits(some[j * stride + key]), "counted query " + (row + j) + " key " + key);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void manyQueriesWithAndWithoutCountsAreBitwiseScalarDots() {
        // four queries and more: the four-panel kernels (16 lanes, no counts) and the four-query pairs (counts)
        SplittableRandom rnd = new SplittableRandom(4);
        for (int d : new int[] {16, 33, 128}) {
            for (int n : new int[] {64, 101, 300}) {
                float[] k = new float[n * d];
                for (int i = 0; i < k.length; i++) {
                    k[i] = (float) (rnd.nextGaussian() * Math.exp(rnd.nextGaussian() * 2));
                }
                KeyPanels p = KeyPanels.of(k, n, d);
                for (int queries : new int[] {4, 7, 9, 13}) {
                    float[] q = new float[queries * d];
                    for (int i = 0; i < q.length; i++) {
                        q[i] = (float) rnd.nextGaussian();
                    }
                    int stride = KeyPanels.paddedLength(n);
                    for (int kind = 0; kind < 3; kind++) {
                        // 0: no counts; 1: counts spread over [0, n]; 2: causal-like, within a few keys of each other
                        int[] counts = kind == 0 ? null : new int[queries];
                        int base = rnd.nextInt(n + 1);
                        for (int j = 0; kind > 0 && j < queries; j++) {
                            counts[j] = kind == 1 ? rnd.nextInt(n + 1) : Math.min(n, Math.max(0, base + rnd.nextInt(-3, 4)));
                        }
                        float[] out = new float[queries * stride];
                        java.util.Arrays.fill(out, Float.NaN);
                        p.dots(q, 0, queries, n, out, stride, counts);
                        for (int j = 0; j < queries; j++) {
                            int upTo = counts == null ? n : counts[j];
                            for (int key = 0; key < upTo; key++) {
                                assertEquals(Float.floatToRawIntBits(Vectors.dot(q, j, k, key, d)),
                                        Float.floatToRawIntBits(out[j * stride + key]),
                                        "d=" + d + " n=" + n + " queries=" + queries + " kind " + kind + " query " + j
                                                + " key " + key);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void rejectsBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> KeyPanels.of(new float[3], 2, 2));
        KeyPanels p = KeyPanels.of(new float[8], 4, 2);
        assertThrows(IllegalArgumentException.class, () -> p.dots(new float[2], 0, 5, new float[64]));
        assertThrows(IllegalArgumentException.class, () -> p.dots(new float[2], 0, 4, new float[1]));
    }
}
