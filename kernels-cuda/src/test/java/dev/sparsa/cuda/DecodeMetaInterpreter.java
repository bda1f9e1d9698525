package dev.sparsa.cuda;

import static dev.sparsa.cuda.DecodeFormat.*;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;

/**
 * The decode and merge kernels' contract ({@code sparsa_decode_*} and {@code sparsa_decode_merge} in
 * sparsa_decode.cuh) run on host metadata in doubles, for tests without a GPU: each work item visits
 * its keys {@code [v0, v1)} — positions for dense decode, the span table's keys from the item's
 * cursor for spans, slot {@code v mod P} of the {@code (v / P)}-th listed page for Quest's page
 * lists, the {@code v}-th listed key for top-k's key lists (the lists as a choice kernel would have
 * written them into the metadata) — reading each row where the kernel would (through the block table of a
 * paged cache), admits key {@code k} for a row at position {@code p = length − rows + r} iff {@code
 * k ≤ p} and {@code p − k ≤} the span's band, and keeps an online softmax; an item with a scratch
 * entry writes its normalised partial and LSE there and takes a ticket on its merge tile ({@code
 * DI_MERGE}); the item that takes the tile's last ticket merges the tile's partials by their LSEs
 * and resets its counter, as the decode kernels' folded merge does. Scratch starts as NaN, so a tile
 * merged before all its partials are written shows; every tile must be merged exactly once and each
 * item's scratch must lie in its tile's. Every offset, stride and count comes from the scalars, as in
 * the kernels.
 */
final class DecodeMetaInterpreter {
    private DecodeMetaInterpreter() {
    }

    /**
     * @param k the key storage the kernels read: {@code [batch, kvHeads, capacity, D]} (contiguous) or
     *          {@code [pages, kvHeads, pageSize, D]} (paged), host tensors
     * @return {out[batch · qHeads · rows · D], lse[batch · qHeads · rows]} in row-major order
     */
    static double[][] run(int[] meta, long[] scalars, int items, int merges, long scratchEntries, Tensor q, Tensor k,
                          Tensor v, double scale) {
        int rows = (int) s(scalars, "rows");
        int group = (int) s(scalars, "group");
        int kvHeads = (int) s(scalars, "kvHeads");
        int batch = (int) s(scalars, "batch");
        int mode = (int) s(scalars, "sparse");
        boolean paged = s(scalars, "paged") != 0;
        int pageShift = (int) s(scalars, "pageShift");
        int width = (int) s(scalars, "tableWidth");
        int oTables = (int) s(scalars, "oTables");
        int oStarts = (int) s(scalars, "oSpanStarts");
        int oEnds = (int) s(scalars, "oSpanEnds");
        int oDelta = (int) s(scalars, "oSpanDelta");
        int oItems = (int) s(scalars, "oItems");
        int oMerges = (int) s(scalars, "oMerges");
        int oLists = (int) s(scalars, "oLists");
        int listWidth = (int) s(scalars, "listWidth");
        int d = q.dim();
        int heads = kvHeads * group;
        double[] out = new double[batch * heads * rows * d];
        double[] lse = new double[batch * heads * rows];
        double[] scratchO = new double[(int) scratchEntries * d];
        double[] scratchLse = new double[(int) scratchEntries];
        Arrays.fill(scratchO, Double.NaN);
        Arrays.fill(scratchLse, Double.NaN);
        int[] tickets = new int[merges];
        int[] merged = new int[merges];
        float[] qr = new float[d];
        float[] kr = new float[d];
        float[] vr = new float[d];
        for (int i = 0; i < items; i++) {
            int at = oItems + i * DI_STRIDE;
            int b = meta[at + DI_B];
            int g = meta[at + DI_G];
            int length = meta[b];
            for (int p = 0; p < meta[at + DI_PAIRS]; p++) {
                int x = meta[at + DI_PAIR0] + p;
                int h = g * group + x / rows;
                int row = x % rows;
                long pos = (long) length - rows + row;
                q.readRow(b, h, row, qr, 0);
                double mx = Double.NEGATIVE_INFINITY;
                double sum = 0;
                double[] acc = new double[d];
                int span = meta[at + DI_SPAN];
                int off = meta[at + DI_SPAN_OFF];
                for (int visit = meta[at + DI_V0]; visit < meta[at + DI_V1]; visit++) {
                    int key = visit;
                    long band = Integer.MAX_VALUE;
                    int list = oLists + (b * kvHeads + g) * listWidth;
                    if (mode == 2) {
                        key = (meta[list + (visit >> pageShift)] << pageShift) + (visit & ((1 << pageShift) - 1));
                    } else if (mode == 3) {
                        key = meta[list + visit];
                    } else if (mode == 1) {
                        key = meta[oStarts + span] + off;
                        band = meta[oDelta + span];
                        off++;
                        if (meta[oStarts + span] + off == meta[oEnds + span]) {
                            span++;
                            off = 0;
                        }
                    }
                    if (key > pos || pos - key > band) {
                        continue;
                    }
                    if (paged) {
                        int page = meta[oTables + b * width + (key >> pageShift)];
                        int slot = key & ((1 << pageShift) - 1);
                        k.readRow(page, g, slot, kr, 0);
                        v.readRow(page, g, slot, vr, 0);
                    } else {
                        k.readRow(b, g, key, kr, 0);
                        v.readRow(b, g, key, vr, 0);
                    }
                    double sc = 0;
                    for (int c = 0; c < d; c++) {
                        sc += (double) qr[c] * kr[c];
                    }
                    sc *= scale;
                    double m2 = Math.max(mx, sc);
                    double a = mx == Double.NEGATIVE_INFINITY ? 0 : Math.exp(mx - m2);
                    double w = Math.exp(sc - m2);
                    sum = sum * a + w;
                    for (int c = 0; c < d; c++) {
                        acc[c] = acc[c] * a + w * vr[c];
                    }
                    mx = m2;
                }
                double lv = sum > 0 ? mx + Math.log(sum) : Double.NEGATIVE_INFINITY;
                int scratch = meta[at + DI_SCRATCH];
                int o = (b * heads + h) * rows + row;
                for (int c = 0; c < d; c++) {
                    double val = sum > 0 ? acc[c] / sum : 0;
                    if (scratch < 0) {
                        out[o * d + c] = val;
                    } else {
                        scratchO[(scratch + p) * d + c] = val;
                    }
                }
                if (scratch < 0) {
                    lse[o] = lv;
                } else {
                    scratchLse[scratch + p] = lv;
                }
            }
            int scratch = meta[at + DI_SCRATCH];
            int tile = meta[at + DI_MERGE];
            if (scratch < 0) {
                assertEquals(-1, tile, "item " + i + " writes its rows directly: no merge tile");
                continue;
            }
            int tm = oMerges + tile * DM_STRIDE;
            int m = meta[tm + DM_PAIRS];
            int chunk = (scratch - meta[tm + DM_SCRATCH]) / m;
            boolean inTile = tile >= 0 && tile < merges && meta[tm + DM_B] == meta[at + DI_B]
                    && meta[tm + DM_G] == meta[at + DI_G] && meta[tm + DM_PAIR0] == meta[at + DI_PAIR0]
                    && m == meta[at + DI_PAIRS] && scratch == meta[tm + DM_SCRATCH] + chunk * m && chunk >= 0
                    && chunk < meta[tm + DM_CHUNKS];
            assertTrue(inTile, "item " + i + "'s scratch " + scratch + " is one chunk of its merge tile " + tile);
            if (++tickets[tile] == meta[tm + DM_CHUNKS]) {
                tickets[tile] = 0;
                merged[tile]++;
                mergeTile(meta, oMerges, tile, group, rows, heads, d, scratchO, scratchLse, out, lse);
            }
        }
        for (int t = 0; t < merges; t++) {
            assertEquals(1, merged[t], "merge tile " + t + " merged once");
            assertEquals(0, tickets[t], "merge tile " + t + "'s counter back to 0");
        }
        return new double[][] {out, lse};
    }

    /** The merge of tile {@code t}'s chunks by their LSEs (what the last item of the tile does). */
    private static void mergeTile(int[] meta, int oMerges, int t, int group, int rows, int heads, int d,
                                  double[] scratchO, double[] scratchLse, double[] out, double[] lse) {
        int at = oMerges + t * DM_STRIDE;
        int m = meta[at + DM_PAIRS];
        int base = meta[at + DM_SCRATCH];
        int chunks = meta[at + DM_CHUNKS];
        for (int p = 0; p < m; p++) {
            int x = meta[at + DM_PAIR0] + p;
            int b = meta[at + DM_B];
            int h = meta[at + DM_G] * group + x / rows;
            int o = (b * heads + h) * rows + x % rows;
            double mx = Double.NEGATIVE_INFINITY;
            for (int c = 0; c < chunks; c++) {
                mx = Math.max(mx, scratchLse[base + c * m + p]);
            }
            double total = 0;
            double[] acc = new double[d];
            if (mx != Double.NEGATIVE_INFINITY) {
                for (int c = 0; c < chunks; c++) {
                    int e = base + c * m + p;
                    double w = Math.exp(scratchLse[e] - mx);
                    total += w;
                    for (int col = 0; col < d; col++) {
                        acc[col] += w * scratchO[e * d + col];
                    }
                }
            }
            lse[o] = total > 0 ? mx + Math.log(total) : Double.NEGATIVE_INFINITY;
            for (int col = 0; col < d; col++) {
                out[o * d + col] = total > 0 ? acc[col] / total : 0;
            }
        }
    }

    /**
     * Asserts that {@link #run}'s result equals the fp64 oracle's to 1e-9 on every row (outputs and
     * LSEs; an infinite LSE exactly), reading the shape from the oracle.
     */
    static void assertMatches(String what, ReferenceResult ref, double[][] got) {
        int heads = ref.shape().qHeads();
        int rows = ref.shape().queryLength();
        int dim = ref.shape().valueDim();
        for (int b = 0; b < ref.shape().batch(); b++) {
            for (int h = 0; h < heads; h++) {
                for (int row = 0; row < rows; row++) {
                    int o = (b * heads + h) * rows + row;
                    String where = what + " (" + b + ", " + h + ", " + row + ")";
                    double want = ref.lse(b, h, row);
                    if (Double.isInfinite(want)) {
                        assertEquals(want, got[1][o], where + " LSE");
                    } else {
                        assertEquals(want, got[1][o], 1e-9, where + " LSE");
                    }
                    for (int d = 0; d < dim; d++) {
                        assertEquals(ref.out(b, h, row, d), got[0][o * dim + d], 1e-9, where + " d " + d);
                    }
                }
            }
        }
    }

    /**
     * Writes each (sequence, KV head)'s list into {@code meta[oLists + unit · listWidth ..]} as the
     * choice kernels do from {@code sel} (the host's selection of {@code pattern}): Quest's pages
     * ascending (its chosen pages and the last); top-k's sinks, chosen keys ascending and window.
     * Returns the keys each unit's list holds, for the caller to hold against the items' visits.
     *
     * @throws AssertionError if a list does not fit {@code listWidth}
     */
    static long[] fillChoiceLists(int[] meta, long oLists, int listWidth, KvCache cache, DecodeSelection sel,
                                  DecodePattern pattern, int rows) {
        int heads = cache.kvHeads();
        long[] keys = new long[cache.batch() * heads];
        for (int b = 0; b < cache.batch(); b++) {
            int len = cache.length(b);
            for (int g = 0; g < heads; g++) {
                int at = (int) oLists + (b * heads + g) * listWidth;
                int[] spans = sel.chosenSpans(b, g);
                int n = 0;
                if (pattern instanceof DecodePattern.TopK top) {
                    int[] c = CudaDecodeTopK.candidates(len, rows, top);
                    for (int i = 0; i < c[0]; i++) {
                        meta[at + n++] = i;
                    }
                    for (int j = 0; j < spans.length; j += 2) {
                        for (int key = spans[j]; key < spans[j + 1]; key++) {
                            meta[at + n++] = key;
                        }
                    }
                    for (int key = c[1]; key < len; key++) {
                        meta[at + n++] = key;
                    }
                    keys[b * heads + g] = n;
                } else {
                    int page = ((PagedKvCache) cache).pageSize();
                    for (int j = 0; j < spans.length; j += 2) {
                        for (int pg = spans[j] / page; pg * page < spans[j + 1]; pg++) {
                            if (n == 0 || meta[at + n - 1] != pg) {
                                meta[at + n++] = pg;
                            }
                        }
                        keys[b * heads + g] += spans[j + 1] - spans[j];
                    }
                }
                assertTrue(n <= listWidth, n + " list entries fit the width " + listWidth);
            }
        }
        return keys;
    }

    private static long s(long[] scalars, String name) {
        return scalars[scalar(name)];
    }
}
