package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Decode over e4m3 caches: exactly what the same call gives on an f32 cache and f32 query that hold
 * the same values, for contiguous and paged caches, split or not, dense and Quest; and the f32 bound
 * against the fp64 oracle.
 */
class CpuE4m3DecodeTest {

    /** An f32 contiguous cache holding the e4m3 cache's values (appended sequence by sequence). */
    private static ContiguousKvCache f32Twin(KvProblems.Caches c, int[] lengths, int kvHeads, int dim, int dimV) {
        int max = 1;
        for (int l : lengths) {
            max = Math.max(max, l);
        }
        ContiguousKvCache twin = ContiguousKvCache.allocate(DType.F32, lengths.length, kvHeads, max, dim, dimV);
        for (int b = 0; b < lengths.length; b++) {
            twin.append(b, c.keys()[b].to(DType.F32, Layout.BHSD), c.values()[b].to(DType.F32, Layout.BHSD));
        }
        return twin;
    }

    @Test
    void decodeOverE4m3CachesIsTheF32DecodeOfTheirValues() {
        int[] lengths = {700, 0, 129, 33};
        KvProblems.Caches c = KvProblems.caches(23, DType.E4M3, lengths, 2, 40, 24, 16, 90);
        ContiguousKvCache twin = f32Twin(c, lengths, 2, 40, 24);
        dev.sparsa.kv.PagedKvCache pagedTwin = dev.sparsa.kv.PagedKvCache.allocate(DType.F32, lengths.length, 2, 40, 24, 16,
                64, true);
        for (int b = 0; b < lengths.length; b++) {
            pagedTwin.append(b, c.keys()[b].to(DType.F32, Layout.BHSD), c.values()[b].to(DType.F32, Layout.BHSD));
        }
        CpuBackend cpu = new CpuBackend(2);
        for (int rows : new int[] {1, 3}) {
            Tensor q = DecodeFixtures.query(5 + rows, c.contiguous(), 6, rows);
            Tensor q32 = q.to(DType.F32, Layout.BHSD);
            for (SplitKv split : List.of(SplitKv.rule(), SplitKv.fixed(64))) {
                DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                DecodeFixtures.Run want = DecodeFixtures.decode(cpu, q32, twin, null, o, DType.F32);
                for (KvCache cache : List.of(c.contiguous(), c.paged())) {
                    DecodeFixtures.Run run = DecodeFixtures.decode(cpu, q, cache, null, o, DType.F32);
                    assertArrayEquals(want.out().toFloatArray(), run.out().toFloatArray(), cache + " " + split);
                    assertArrayEquals(want.lse().toFloatArray(), run.lse().toFloatArray(), cache + " " + split);
                }
                ReferenceResult ref = DecodeFixtures.oracle(q, c.paged(), null, o);
                double err = ref.maxRelativeError(want.out());
                assertTrue(err <= Tolerance.output(DType.F32), "rows " + rows + " " + split + ": " + err);
            }
            // Quest over the e4m3 page bounds and top-k over e4m3 keys choose what they choose over an f32
            // paged cache of the same values
            DecodeOptions o = DecodeOptions.defaults();
            for (DecodePattern pattern : List.of(DecodePattern.quest(64), DecodePattern.topK(48))) {
                DecodeSelection sel = cpu.select(q, c.paged(), pattern, o);
                DecodeSelection want = cpu.select(q32, pagedTwin, pattern, o);
                for (int b = 0; b < lengths.length; b++) {
                    for (int g = 0; g < 2; g++) {
                        assertArrayEquals(want.chosenSpans(b, g), sel.chosenSpans(b, g), pattern + " b " + b + " g " + g);
                    }
                }
                DecodeFixtures.Run sparse = DecodeFixtures.decode(cpu, q, c.paged(), sel, o, DType.F32);
                ReferenceResult ref = DecodeFixtures.oracle(q, c.paged(), sel, o);
                assertTrue(ref.maxRelativeError(sparse.out()) <= Tolerance.output(DType.F32), pattern.toString());
            }
        }
    }

    @Test
    void chunkedPrefillWithABf16QueryAgainstAnE4m3CacheMeetsTheF32Bound() {
        int n = 150;
        java.util.SplittableRandom r = new java.util.SplittableRandom(9);
        Tensor q = dev.sparsa.testing.Problems.random(r, DType.BF16, Layout.BHSD, 1, 4, n, 32, 2);
        Tensor k = dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BHSD, 1, 2, n, 32, 2);
        Tensor v = dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BHSD, 1, 2, n, 32, 1);
        dev.sparsa.kv.PagedKvCache cache = dev.sparsa.kv.PagedKvCache.allocateE4m3(1, 2, 32, 32, 16, 10, false,
                new float[] {2f / 448, 3f / 448}, new float[] {1f / 448});
        dev.sparsa.spec.Options o = dev.sparsa.spec.Options.causalMask().withOutputDType(DType.F32);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, n, 32);
        int at = 0;
        for (int c : new int[] {64, 50, 36}) {
            cache.append(0, k.narrowSeq(at, c), v.narrowSeq(at, c));
            Tensor part = Attention.prefill(q.narrowSeq(at, c), cache, 0, dev.sparsa.pattern.Dense.INSTANCE, o);
            Tensor.copy(part, out.narrowSeq(at, c));
            at += c;
        }
        ReferenceResult ref = dev.sparsa.reference.ReferenceAttention.dense(q, cache.keys(0), cache.values(0), o, null);
        assertTrue(ref.maxRelativeError(out) <= Tolerance.output(DType.F32), "error " + ref.maxRelativeError(out));
    }

    @Test
    void theFacadeDecodesAnE4m3CacheIntoBf16WithAnE4m3OrBf16Query() {
        ContiguousKvCache cache = ContiguousKvCache.allocateE4m3(1, 2, 64, 16, 16, new float[] {0.01f, 0.02f},
                new float[] {0.005f});
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        Tensor k = dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BHSD, 1, 2, 50, 16, 2);
        Tensor v = dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BHSD, 1, 2, 50, 16, 1);
        cache.append(0, k, v);
        Tensor q = Tensor.quantizeE4m3PerHead(dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BHSD, 1, 4, 1, 16, 2),
                Layout.BHSD);
        // Q quantised, or the model's bf16 Q as it is
        for (Tensor query : List.of(q, dev.sparsa.testing.Problems.random(r, DType.BF16, Layout.BHSD, 1, 4, 1, 16, 2))) {
            AttentionResult res = Attention.decodeWithLse(query, cache, DecodeOptions.defaults());
            assertEquals(DType.BF16, res.output().dtype());
            ReferenceResult ref = dev.sparsa.reference.ReferenceDecode.decode(query, cache, null,
                    DecodeOptions.defaults().run());
            double err = ref.maxRelativeError(res.output());
            assertTrue(err <= 4e-3, query.dtype() + ": bf16 output rounding only: " + err);
            assertTrue(err > 0, "a bf16 output is rounded");
        }
    }
}
