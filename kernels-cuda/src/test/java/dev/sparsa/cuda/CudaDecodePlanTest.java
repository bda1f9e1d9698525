package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The metadata a direct CUDA decode call builds on the host ({@code CudaDecode.plan}), without a
 * GPU: read with its scalars by {@link DecodeMetaInterpreter} (the kernels' contract in doubles), it
 * gives the fp64 decode oracle's outputs and LSEs — dense and over selections (sinks, windows, chosen
 * spans, dense heads, a head with no chosen keys), contiguous and paged caches (pages of interleaved
 * sequences, read through the block tables the metadata carries), one and seven rows (21 pairs: a
 * tile of 16 and one of 5), and split-KV cuts that fall inside spans and across them.
 */
class CudaDecodePlanTest {
    private static final int[] LENGTHS = {0, 1, 63, 64, 65, 300, 777};
    private static final int KV_HEADS = 2;
    private static final int GROUP = 3;
    private static final int DIM = 16;
    private static final int PAGE = 16;
    private static final int SMS = 132;

    private static Tensor random(SplittableRandom r, int b, int h, int s, int d) {
        return Problems.random(r, DType.F32, Layout.BHSD, b, h, s, d, 1);
    }

    /** A contiguous and a paged host cache holding the same sequences (the paged one's pages interleaved). */
    private static List<KvCache> caches(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int batch = LENGTHS.length;
        Tensor k = random(r, batch, KV_HEADS, 800, DIM);
        Tensor v = random(r, batch, KV_HEADS, 800, DIM);
        ContiguousKvCache flat = ContiguousKvCache.wrap(k, v, LENGTHS);
        PagedKvCache paged = PagedKvCache.allocate(DType.F32, batch, KV_HEADS, DIM, DIM, PAGE, batch * 50 + 3, false);
        for (int done = 0; done < 800; done += 50) {
            for (int b = 0; b < batch; b++) {
                int n = Math.min(50, LENGTHS[b] - done);
                if (n > 0) {
                    paged.append(b, k.narrowBatch(b, 1).narrowSeq(done, n), v.narrowBatch(b, 1).narrowSeq(done, n));
                }
            }
        }
        return List.of(flat, paged);
    }

    /** Sinks and a window everywhere, chosen spans on most heads, head 1 of sequence 5 dense, one head with no spans. */
    private static DecodeSelection selection() {
        DecodeSelection.Builder s = DecodeSelection.builder(LENGTHS.length, KV_HEADS, LENGTHS);
        for (int b = 0; b < LENGTHS.length; b++) {
            int len = LENGTHS[b];
            for (int g = 0; g < KV_HEADS; g++) {
                s.forced(b, g, 2, 20);
                if (b == 5 && g == 1) {
                    s.dense(b, g);
                } else if (len >= 64 && !(b == 6 && g == 0)) {
                    s.span(b, g, len / 4, len / 4 + len / 8 + g);
                    s.span(b, g, len / 2, len / 2 + 9);
                    s.span(b, g, len / 2 + 11, len / 2 + 12);
                }
            }
        }
        return s.build();
    }

    @Test
    void theHostMetadataOfADecodeCallGivesTheOraclesDecode() {
        DecodeSelection sel = selection();
        int checked = 0;
        for (KvCache cache : caches(7)) {
            for (int rows : new int[] {1, 7}) {
                Tensor q = random(new SplittableRandom(11 + rows), LENGTHS.length, KV_HEADS * GROUP, rows, DIM);
                for (DecodeSelection selection : new DecodeSelection[] {null, sel}) {
                    for (SplitKv split : new SplitKv[] {SplitKv.none(), SplitKv.fixed(40), SplitKv.fixed(7),
                        SplitKv.rule()}) {
                        DecodeOptions o = DecodeOptions.defaults().withSplit(split);
                        CudaDecode.Storage st = cache instanceof PagedKvCache p
                                ? new CudaDecode.Storage(p.keyPages(), p.valuePages(), null, true,
                                        Integer.numberOfTrailingZeros(PAGE), Math.max(1, p.maxPageCount()))
                                : new CudaDecode.Storage(((ContiguousKvCache) cache).keyStorage(),
                                        ((ContiguousKvCache) cache).valueStorage(), null, false, 0, 0);
                        CudaDecode.Plan plan = CudaDecode.plan(SMS, q, cache, st, selection, null, null, null, o, true);
                        if (split.fixedChunkKeys() < 100) {
                            assertTrue(plan.merges > 0, "a split call merges: " + split);
                        }
                        double scale = o.run().scaleFor(DIM);
                        double[][] got = DecodeMetaInterpreter.run(plan.meta, plan.scalars, plan.items, plan.merges,
                                plan.scratchEntries, q, st.k(), st.v(), scale);
                        ReferenceResult ref = ReferenceDecode.decode(q, cache, selection, o.run());
                        String what = cache.getClass().getSimpleName() + " rows " + rows + " "
                                + (selection == null ? "dense" : "selection") + " " + split;
                        DecodeMetaInterpreter.assertMatches(what, ref, got);
                        checked++;
                    }
                }
            }
        }
        assertEquals(32, checked);
    }
}
