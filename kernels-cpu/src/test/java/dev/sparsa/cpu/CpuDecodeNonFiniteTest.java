package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import org.junit.jupiter.api.Test;

/**
 * Decode's rule for non-finite inputs, as prefill's (docs/numerics.md, "Edges"): a row with a NaN
 * or +∞ score among its admitted keys is NaN in every element with LSE NaN — never the 0 and −∞ of
 * an empty row — with and without split-KV (a chunk whose sum turned NaN is not an empty chunk to
 * the merge), on contiguous and paged caches; a −∞ score weighs 0; the other rows still meet the
 * oracle.
 */
class CpuDecodeNonFiniteTest {
    private static final int[] LENGTHS = {40, 300};

    @Test
    void aNanOrInfiniteScoreMakesTheRowNanNotEmpty() {
        CpuBackend backend = new CpuBackend(2);
        for (SplitKv split : new SplitKv[] {SplitKv.none(), SplitKv.fixed(16)}) {
            DecodeOptions o = DecodeOptions.defaults().withSplit(split).withOutputDType(DType.F32);
            // a NaN in Q: (sequence 1, head 3, row 1) scores NaN against every key
            KvProblems.Caches c = KvProblems.caches(5, DType.F32, LENGTHS, 2, 16, 16, 16, 50);
            Tensor q = DecodeFixtures.query(6, c.contiguous(), 4, 2);
            q.set(1, 3, 1, 7, Float.NaN);
            for (KvCache cache : new KvCache[] {c.contiguous(), c.paged()}) {
                check(split + " NaN in Q, " + cache.getClass().getSimpleName(), backend, q, cache, o, 1, 3, 1);
            }
            // +∞ in key 250 of (sequence 1, KV head 0), weighed positively by (head 0, row 0): +∞ score
            KvProblems.Caches d = KvProblems.caches(7, DType.F32, LENGTHS, 2, 16, 16, 16, 50);
            Tensor q2 = DecodeFixtures.query(8, d.contiguous(), 4, 1);
            float sign = Math.signum(q2.get(1, 0, 0, 2));
            for (KvCache cache : new KvCache[] {d.contiguous(), d.paged()}) {
                Tensor keys = cache.keys(1);
                float[] row = new float[16];
                keys.readRow(0, 0, 250, row, 0);
                row[2] = sign * Float.POSITIVE_INFINITY;
                writeKey(cache, 250, row);
                check(split + " +inf score, " + cache.getClass().getSimpleName(), backend, q2, cache, o, 1, 0, 0);
            }
        }
    }

    /** Writes key row {@code t} of sequence 1, KV head 0 in place (through the block table when paged). */
    private static void writeKey(KvCache cache, int t, float[] row) {
        if (cache instanceof dev.sparsa.kv.PagedKvCache p) {
            p.keyPages().writeRow(p.page(1, t), 0, t % p.pageSize(), row, 0);
        } else {
            ((dev.sparsa.kv.ContiguousKvCache) cache).keyStorage().writeRow(1, 0, t, row, 0);
        }
    }

    private static void check(String what, CpuBackend backend, Tensor q, KvCache cache, DecodeOptions o, int b, int h,
                              int r) {
        DecodeFixtures.Run run = DecodeFixtures.decode(backend, q, cache, null, o, DType.F32);
        ReferenceResult ref = DecodeFixtures.oracle(q, cache, null, o);
        assertTrue(Double.isNaN(ref.lse(b, h, r)), what + ": the oracle's row is NaN");
        for (int d = 0; d < 16; d++) {
            assertTrue(Float.isNaN(run.out().get(b, h, r, d)), what + ": element " + d + " is " + run.out().get(b, h, r, d));
        }
        assertTrue(Float.isNaN(run.lse().get(b, h, r, 0)), what + ": LSE " + run.lse().get(b, h, r, 0));
        // every other row of the call meets the oracle
        for (int bb = 0; bb < q.batch(); bb++) {
            for (int hh = 0; hh < q.heads(); hh++) {
                for (int rr = 0; rr < q.seqLen(); rr++) {
                    if (Double.isNaN(ref.lse(bb, hh, rr))) {
                        continue;
                    }
                    assertEquals(ref.lse(bb, hh, rr), run.lse().get(bb, hh, rr, 0), 1e-4, what + " (" + bb + ", " + hh
                            + ", " + rr + ") LSE");
                    for (int d = 0; d < 16; d++) {
                        assertEquals(ref.out(bb, hh, rr, d), run.out().get(bb, hh, rr, d), 1e-4, what + " element");
                    }
                }
            }
        }
    }
}
