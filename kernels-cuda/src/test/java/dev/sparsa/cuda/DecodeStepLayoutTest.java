package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The prepared decode step's metadata without a GPU: the item and merge counts stay fixed while the
 * lengths change, every (sequence, KV head, pair tile) visits exactly its keys {@code [0, length)}
 * in chunk order, scratch rows never overlap, and the metadata, read by an interpreter of the decode
 * and merge kernels' contract (each item: online softmax over its keys in doubles; each merge: the
 * chunks' partials weighed by their LSEs), gives the fp64 decode oracle's outputs and LSEs.
 */
class DecodeStepLayoutTest {
    private static final int[] LENGTHS = {0, 1, 6, 63, 64, 65, 300, 1000};
    private static final int MAX = 1024;
    private static final int KV_HEADS = 2;
    private static final int GROUP = 3;
    private static final int ROWS = 7;
    private static final int DIM = 16;

    @Test
    void countsStayFixedAndEveryTileVisitsItsKeysOnceInOrder() {
        for (int fixed : new int[] {0, 256}) {
            int chunks = fixed == 0 ? 5 : MAX / fixed;
            DecodeStepLayout l = new DecodeStepLayout(LENGTHS.length, KV_HEADS, GROUP * ROWS, chunks, fixed, 0);
            assertEquals(2, l.tiles, "21 pairs make a tile of 16 and one of 5");
            assertEquals(LENGTHS.length * KV_HEADS * 2 * chunks, l.items);
            assertEquals(LENGTHS.length * KV_HEADS * 2, l.merges);
            int[] meta = new int[l.size];
            int[] previous = null;
            for (int shift : new int[] {0, 1, 17, 24}) {
                int[] lengths = Arrays.stream(LENGTHS).map(x -> Math.min(MAX, x + shift)).toArray();
                l.write(meta, lengths, null);
                // the fields that a captured graph cannot follow stay put: everything but lengths and key ranges
                int[] fixedPart = fixedFields(l, meta);
                if (previous != null) {
                    assertEquals(Arrays.toString(previous), Arrays.toString(fixedPart), "shift " + shift);
                }
                previous = fixedPart;
                boolean[] scratchUsed = new boolean[l.scratchEntries];
                int at = l.oItems;
                for (int b = 0; b < lengths.length; b++) {
                    for (int g = 0; g < KV_HEADS; g++) {
                        for (int t = 0; t < l.tiles; t++) {
                            int next = 0;
                            for (int c = 0; c < chunks; c++, at += DI_STRIDE) {
                                assertEquals(b, meta[at + DI_B]);
                                assertEquals(g, meta[at + DI_G]);
                                assertEquals(16 * t, meta[at + DI_PAIR0]);
                                assertEquals(next, meta[at + DI_V0], "chunk " + c + " starts where the last ended");
                                assertTrue(meta[at + DI_V1] >= meta[at + DI_V0]);
                                if (fixed > 0) {
                                    assertEquals(Math.min(lengths[b], c * fixed), meta[at + DI_V0], "fixed cut");
                                }
                                next = meta[at + DI_V1];
                                for (int i = 0; i < meta[at + DI_PAIRS]; i++) {
                                    int e = meta[at + DI_SCRATCH] + i;
                                    assertTrue(!scratchUsed[e], "scratch row " + e + " written twice");
                                    scratchUsed[e] = true;
                                }
                            }
                            assertEquals(lengths[b], next, "sequence " + b + " covered to its length");
                        }
                    }
                }
                for (int e = 0; e < scratchUsed.length; e++) {
                    assertTrue(scratchUsed[e], "scratch row " + e + " unused");
                }
            }
        }
    }

    @Test
    void theEvenCutSpreadsShortSequencesOverEveryChunkInWholeTiles() {
        DecodeStepLayout l = new DecodeStepLayout(1, 1, 1, 16, 0, 0);
        for (int c = 0; c <= 16; c++) {
            assertEquals(Math.min(1000, c * 64), l.chunkStart(1000, c), "1000 keys in chunks of 64");
            assertEquals(Math.min(8192, c * 512), l.chunkStart(8192, c));
        }
        assertEquals(0, l.chunkStart(0, 16));
    }

    @Test
    void blockTablesArePaddedToTheWidthAndLengthsLead() {
        DecodeStepLayout l = new DecodeStepLayout(2, 1, 1, 1, 0, 4);
        int[] meta = new int[l.size];
        Arrays.fill(meta, -7);
        l.write(meta, new int[] {40, 3}, new int[][] {{9, 8, 7}, {5, 6, 1, 2, 3, 4}});
        assertEquals(40, meta[0]);
        assertEquals(3, meta[1]);
        assertEquals("[9, 8, 7, 0, 5, 6, 1, 2]", Arrays.toString(Arrays.copyOfRange(meta, l.oTables, l.oItems)));
        assertEquals(-1, meta[l.oItems + DI_SCRATCH], "one chunk: rows written directly");
        assertEquals(l.oMerges, l.size, "no merge tiles");
    }

    @Test
    void refusesCountsOutOfRangeAndShortArrays() {
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(0, 1, 1, 1, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1, 1, 1, 0, 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new DecodeStepLayout(1 << 16, 64, 64, 1 << 12, 0, 0));
        DecodeStepLayout l = new DecodeStepLayout(2, 1, 1, 2, 0, 0);
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1}, null));
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1, -1}, null));
        assertThrows(IllegalArgumentException.class, () -> l.write(new int[l.size], new int[] {1, 1}, new int[][] {{}, {}}));
    }

    @Test
    void interpretedItemsAndMergesGiveTheOraclesDecode() {
        SplittableRandom r = new SplittableRandom(5);
        int batch = LENGTHS.length;
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, batch, KV_HEADS, MAX, DIM);
        Tensor v = Tensor.allocate(DType.F32, Layout.BHSD, batch, KV_HEADS, MAX, DIM);
        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, batch, KV_HEADS * GROUP, ROWS, DIM);
        fill(k, r);
        fill(v, r);
        fill(q, r);
        RunOptions run = RunOptions.defaults();
        for (int fixed : new int[] {0, 256}) {
            int chunks = fixed > 0 ? MAX / fixed : 7;
            for (int shift : new int[] {0, 9}) {
                int[] lengths = Arrays.stream(LENGTHS).map(x -> Math.min(MAX, x + shift)).toArray();
                ContiguousKvCache cache = ContiguousKvCache.wrap(k, v, lengths);
                ReferenceResult ref = ReferenceDecode.decode(q, cache, null, run);
                for (int c : new int[] {1, chunks}) {
                    DecodeStepLayout l = new DecodeStepLayout(batch, KV_HEADS, GROUP * ROWS, c, c == 1 ? 0 : fixed, 0);
                    int[] meta = new int[l.size];
                    l.write(meta, lengths, null);
                    double[][] got = interpret(l, meta, q, k, v, run.scaleFor(DIM));
                    double[] out = got[0];
                    double[] lse = got[1];
                    for (int b = 0; b < batch; b++) {
                        for (int h = 0; h < KV_HEADS * GROUP; h++) {
                            for (int row = 0; row < ROWS; row++) {
                                int o = (b * KV_HEADS * GROUP + h) * ROWS + row;
                                String where = "fixed " + fixed + " chunks " + c + " shift " + shift + " (" + b + ", " + h
                                        + ", " + row + ")";
                                double want = ref.lse(b, h, row);
                                if (Double.isInfinite(want)) {
                                    assertEquals(want, lse[o], where + " LSE");
                                } else {
                                    assertEquals(want, lse[o], 1e-9, where + " LSE");
                                }
                                for (int d = 0; d < DIM; d++) {
                                    assertEquals(ref.out(b, h, row, d), out[o * DIM + d], 1e-9, where + " d " + d);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /** Every int of the metadata but the lengths and the items' key ranges. */
    private static int[] fixedFields(DecodeStepLayout l, int[] meta) {
        int[] copy = Arrays.copyOf(meta, l.size);
        Arrays.fill(copy, 0, l.batch, 0);
        for (int i = 0; i < l.items; i++) {
            copy[l.oItems + i * DI_STRIDE + DI_V0] = 0;
            copy[l.oItems + i * DI_STRIDE + DI_V1] = 0;
        }
        return copy;
    }

    private static void fill(Tensor t, SplittableRandom r) {
        float[] row = new float[t.dim()];
        for (int b = 0; b < t.batch(); b++) {
            for (int h = 0; h < t.heads(); h++) {
                for (int s = 0; s < t.seqLen(); s++) {
                    for (int d = 0; d < row.length; d++) {
                        row[d] = (float) (r.nextDouble() * 2 - 1);
                    }
                    t.writeRow(b, h, s, row, 0);
                }
            }
        }
    }

    /**
     * The decode and merge kernels' contract run on the metadata in doubles: returns {out[batch ·
     * heads · rows · DIM], lse[batch · heads · rows]}.
     */
    private static double[][] interpret(DecodeStepLayout l, int[] meta, Tensor q, Tensor k, Tensor v, double scale) {
        int heads = KV_HEADS * GROUP;
        double[] out = new double[l.batch * heads * ROWS * DIM];
        double[] lse = new double[l.batch * heads * ROWS];
        double[] scratchO = new double[l.scratchEntries * DIM];
        double[] scratchLse = new double[l.scratchEntries];
        float[] qr = new float[DIM];
        float[] kr = new float[DIM];
        float[] vr = new float[DIM];
        for (int i = 0; i < l.items; i++) {
            int at = l.oItems + i * DI_STRIDE;
            int b = meta[at + DI_B];
            int g = meta[at + DI_G];
            int length = meta[b];
            for (int p = 0; p < meta[at + DI_PAIRS]; p++) {
                int x = meta[at + DI_PAIR0] + p;
                int h = g * GROUP + x / ROWS;
                int row = x % ROWS;
                long pos = (long) length - ROWS + row;
                q.readRow(b, h, row, qr, 0);
                double mx = Double.NEGATIVE_INFINITY;
                double sum = 0;
                double[] acc = new double[DIM];
                for (int key = meta[at + DI_V0]; key < meta[at + DI_V1]; key++) {
                    if (key > pos) {
                        continue;
                    }
                    k.readRow(b, g, key, kr, 0);
                    v.readRow(b, g, key, vr, 0);
                    double s = 0;
                    for (int d = 0; d < DIM; d++) {
                        s += (double) qr[d] * kr[d];
                    }
                    s *= scale;
                    double m2 = Math.max(mx, s);
                    double a = mx == Double.NEGATIVE_INFINITY ? 0 : Math.exp(mx - m2);
                    double w = Math.exp(s - m2);
                    sum = sum * a + w;
                    for (int d = 0; d < DIM; d++) {
                        acc[d] = acc[d] * a + w * vr[d];
                    }
                    mx = m2;
                }
                double lv = sum > 0 ? mx + Math.log(sum) : Double.NEGATIVE_INFINITY;
                int scratch = meta[at + DI_SCRATCH];
                int o = (b * heads + h) * ROWS + row;
                for (int d = 0; d < DIM; d++) {
                    double val = sum > 0 ? acc[d] / sum : 0;
                    if (scratch < 0) {
                        out[o * DIM + d] = val;
                    } else {
                        scratchO[(scratch + p) * DIM + d] = val;
                    }
                }
                if (scratch < 0) {
                    lse[o] = lv;
                } else {
                    scratchLse[scratch + p] = lv;
                }
            }
        }
        for (int t = 0; t < l.merges; t++) {
            int at = l.oMerges + t * DM_STRIDE;
            int m = meta[at + DM_PAIRS];
            int base = meta[at + DM_SCRATCH];
            for (int p = 0; p < m; p++) {
                int x = meta[at + DM_PAIR0] + p;
                int b = meta[at + DM_B];
                int h = meta[at + DM_G] * GROUP + x / ROWS;
                int o = (b * heads + h) * ROWS + x % ROWS;
                double mx = Double.NEGATIVE_INFINITY;
                for (int c = 0; c < meta[at + DM_CHUNKS]; c++) {
                    mx = Math.max(mx, scratchLse[base + c * m + p]);
                }
                double total = 0;
                double[] acc = new double[DIM];
                if (mx != Double.NEGATIVE_INFINITY) {
                    for (int c = 0; c < meta[at + DM_CHUNKS]; c++) {
                        int e = base + c * m + p;
                        double w = Math.exp(scratchLse[e] - mx);
                        total += w;
                        for (int d = 0; d < DIM; d++) {
                            acc[d] += w * scratchO[e * DIM + d];
                        }
                    }
                }
                lse[o] = total > 0 ? mx + Math.log(total) : Double.NEGATIVE_INFINITY;
                for (int d = 0; d < DIM; d++) {
                    out[o * DIM + d] = total > 0 ? acc[d] / total : 0;
                }
            }
        }
        return new double[][] {out, lse};
    }
}
