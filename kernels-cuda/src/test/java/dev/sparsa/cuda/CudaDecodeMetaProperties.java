package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * Random decode problems (batch, KV heads, group, rows, ragged lengths from 0, random selections,
 * split rules, SM counts, page sizes) through the CUDA backend's host metadata — a direct call's
 * ({@code CudaDecode.plan}) and a prepared step's ({@link DecodeStepLayout}) — read by {@link
 * DecodeMetaInterpreter} and held against the fp64 decode oracle; for Quest and top-k, chosen on the
 * device, with the lists filled from the host's selection as the choice kernels write them. No GPU
 * needed.
 */
class CudaDecodeMetaProperties {
    private static final int DIM = 8;

    /** Entries uniform in ±2, f32. */
    private static Tensor random(SplittableRandom r, int b, int h, int s) {
        return Problems.random(r, DType.F32, Layout.BHSD, b, h, s, DIM, 2);
    }

    private static int[] lengths(SplittableRandom r, int batch, int max) {
        int[] l = new int[batch];
        for (int b = 0; b < batch; b++) {
            l[b] = r.nextInt(5) == 0 ? Math.min(max, r.nextInt(3)) : r.nextInt(max + 1);
        }
        return l;
    }

    /** A paged host cache holding the contiguous one's sequences, pages handed out in a shuffled order. */
    private static PagedKvCache paged(ContiguousKvCache flat, int pageSize, SplittableRandom r) {
        return paged(flat, pageSize, r, false);
    }

    /** {@link #paged(ContiguousKvCache, int, SplittableRandom)}, keeping Quest's page bounds or not. */
    private static PagedKvCache paged(ContiguousKvCache flat, int pageSize, SplittableRandom r, boolean bounds) {
        int batch = flat.batch();
        PagedKvCache p = PagedKvCache.allocate(DType.F32, batch, flat.kvHeads(), DIM, DIM, pageSize,
                batch * (flat.capacity() / pageSize + 1) + 2, bounds);
        int[] done = new int[batch];
        boolean more = true;
        while (more) {
            more = false;
            for (int b = 0; b < batch; b++) {
                int n = Math.min(1 + r.nextInt(40), flat.length(b) - done[b]);
                if (n > 0) {
                    p.append(b, flat.keys(b).narrowSeq(done[b], n), flat.values(b).narrowSeq(done[b], n));
                    done[b] += n;
                    more = true;
                }
            }
        }
        return p;
    }

    private static DecodeSelection selection(SplittableRandom r, int batch, int kvHeads, int[] lengths) {
        DecodeSelection.Builder s = DecodeSelection.builder(batch, kvHeads, lengths);
        for (int b = 0; b < batch; b++) {
            for (int g = 0; g < kvHeads; g++) {
                int kind = r.nextInt(4);
                if (kind == 0) {
                    s.dense(b, g);
                    continue;
                }
                s.forced(b, g, r.nextInt(4), r.nextInt(30));
                int at = 0;
                while (kind > 1 && at < lengths[b]) {
                    at += r.nextInt(1 + lengths[b] / 4);
                    int end = Math.min(lengths[b], at + 1 + r.nextInt(20));
                    if (at < end) {
                        s.span(b, g, at, end);
                    }
                    at = end + 1 + r.nextInt(10);
                }
            }
        }
        return s.build();
    }

    private static SplitKv split(SplittableRandom r) {
        return switch (r.nextInt(4)) {
            case 0 -> SplitKv.none();
            case 1 -> SplitKv.fixed(1 + r.nextInt(90));
            case 2 -> SplitKv.rule(1 + r.nextInt(64), 1 + r.nextInt(3));
            default -> SplitKv.rule();
        };
    }

    @Property(tries = 150)
    void aDirectCallsMetadataGivesTheOraclesDecode(@ForAll long seed, @ForAll @IntRange(min = 1, max = 4) int batch,
                                                  @ForAll @IntRange(min = 1, max = 3) int kvHeads,
                                                  @ForAll @IntRange(min = 1, max = 5) int group,
                                                  @ForAll @IntRange(min = 1, max = 6) int rows) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] lengths = lengths(r, batch, 200);
        ContiguousKvCache flat = ContiguousKvCache.wrap(random(r, batch, kvHeads, 200), random(r, batch, kvHeads, 200),
                lengths);
        boolean usePaged = r.nextBoolean();
        KvCache cache = usePaged ? paged(flat, 1 << (1 + r.nextInt(5)), r) : flat;
        Tensor q = random(r, batch, kvHeads * group, rows);
        DecodeSelection selection = r.nextBoolean() ? null : selection(r, batch, kvHeads, lengths);
        DecodeOptions o = DecodeOptions.defaults().withSplit(split(r));
        int sms = 1 + r.nextInt(140);
        CudaDecode.Storage st = cache instanceof PagedKvCache p
                ? new CudaDecode.Storage(p.keyPages(), p.valuePages(), null, true,
                        Integer.numberOfTrailingZeros(p.pageSize()), Math.max(1, p.maxPageCount()))
                : new CudaDecode.Storage(flat.keyStorage(), flat.valueStorage(), null, false, 0, 0);
        CudaDecode.Plan plan = CudaDecode.plan(sms, q, cache, st, selection, null, null, null, o, true);
        double scale = o.run().scaleFor(DIM);
        double[][] got = DecodeMetaInterpreter.run(plan.meta, plan.scalars, plan.items, plan.merges, plan.scratchEntries,
                q, st.k(), st.v(), scale);
        DecodeMetaInterpreter.assertMatches((usePaged ? "paged" : "contiguous") + " "
                + (selection == null ? "dense" : selection) + " " + o.split() + " sms " + sms,
                ReferenceDecode.decode(q, cache, selection, o.run()), got);
    }

    @Property(tries = 150)
    void aPreparedStepsMetadataGivesTheOraclesDecodeAtEveryLength(@ForAll long seed,
                                                                 @ForAll @IntRange(min = 1, max = 4) int batch,
                                                                 @ForAll @IntRange(min = 1, max = 3) int kvHeads,
                                                                 @ForAll @IntRange(min = 1, max = 5) int group,
                                                                 @ForAll @IntRange(min = 1, max = 6) int rows,
                                                                 @ForAll @IntRange(min = 1, max = 12) int chunks) {
        SplittableRandom r = new SplittableRandom(seed);
        int max = 1 + r.nextInt(200);
        int fixed = r.nextBoolean() ? 0 : (max + chunks - 1) / chunks + r.nextInt(20);
        int[] lengths = lengths(r, batch, max);
        ContiguousKvCache flat = ContiguousKvCache.wrap(random(r, batch, kvHeads, max), random(r, batch, kvHeads, max),
                lengths);
        Tensor q = random(r, batch, kvHeads * group, rows);
        boolean usePaged = r.nextBoolean();
        KvCache cache = usePaged ? paged(flat, 1 << (1 + r.nextInt(5)), r) : flat;
        int width = 0;
        int[][] tables = null;
        Tensor k = flat.keyStorage();
        Tensor v = flat.valueStorage();
        int pageShift = 0;
        if (cache instanceof PagedKvCache p) {
            width = (max + p.pageSize() - 1) / p.pageSize();
            tables = new int[batch][];
            for (int b = 0; b < batch; b++) {
                tables[b] = p.blockTable(b);
            }
            k = p.keyPages();
            v = p.valuePages();
            pageShift = Integer.numberOfTrailingZeros(p.pageSize());
        }
        DecodeStepLayout l = new DecodeStepLayout(batch, kvHeads, group * rows, chunks, fixed, width);
        int[] meta = new int[l.size];
        l.write(meta, lengths, tables);
        double scale = DecodeOptions.defaults().run().scaleFor(DIM);
        long[] scalars = CudaDecode.scalars(q, k, v, null, null, group, rows, width > 0, pageShift, width,
                CudaDecode.MODE_DENSE, kvHeads, batch, l.offsets(), 1, scale, 0);
        double[][] got = DecodeMetaInterpreter.run(meta, scalars, l.items, l.merges, l.scratchEntries, q, k, v, scale);
        DecodeMetaInterpreter.assertMatches((usePaged ? "paged" : "contiguous") + " max " + max + " chunks " + chunks
                + " fixed " + fixed, ReferenceDecode.decode(q, cache, null, DecodeOptions.defaults().run()), got);
    }


    @Property(tries = 150)
    void questAndTopKMetadataGivesTheOraclesDecodeOfTheHostsSelection(@ForAll long seed,
                                                                      @ForAll @IntRange(min = 1, max = 4) int batch,
                                                                      @ForAll @IntRange(min = 1, max = 3) int kvHeads,
                                                                      @ForAll @IntRange(min = 1, max = 5) int group,
                                                                      @ForAll @IntRange(min = 1, max = 6) int rows) {
        SplittableRandom r = new SplittableRandom(seed);
        int max = 1 + r.nextInt(300);
        int[] lengths = lengths(r, batch, max);
        ContiguousKvCache flat = ContiguousKvCache.wrap(random(r, batch, kvHeads, max), random(r, batch, kvHeads, max),
                lengths);
        Tensor q = random(r, batch, kvHeads * group, rows);
        int pageSize = 1 << (1 + r.nextInt(5));
        boolean quest = r.nextBoolean();
        DecodePattern pattern;
        KvCache cache;
        if (quest) {
            pattern = DecodePattern.quest(1 + r.nextInt(max + 20));
            cache = paged(flat, pageSize, r, true);
        } else {
            int window = rows == 1 && r.nextBoolean() ? r.nextInt(40) : 0;
            int sinks = r.nextInt(4);
            int tokens = r.nextInt(4) == 0 && sinks + window > 0 ? 0 : 1 + r.nextInt(max + 10);
            pattern = new DecodePattern.TopK(tokens, sinks, window);
            cache = r.nextBoolean() ? paged(flat, pageSize, r, false) : flat;
        }
        DecodeSelection sel = DecodeSelector.select(q, cache, pattern);
        DecodeOptions o = DecodeOptions.defaults().withSplit(split(r));
        double scale = o.run().scaleFor(DIM);
        var want = ReferenceDecode.decode(q, cache, sel, o.run());
        CudaDecode.Storage st = CudaDecode.Storage.of(cache);
        String what = pattern.name() + " on " + cache + " rows " + rows + " " + o.split();
        // a direct call's metadata
        int sms = 1 + r.nextInt(140);
        CudaDecode.Plan plan = CudaDecode.plan(sms, q, cache, st, null, pattern, null, null, o, true);
        int[] meta = java.util.Arrays.copyOf(plan.meta, (int) plan.metaInts);
        DecodeMetaInterpreter.fillChoiceLists(meta, plan.oLists, plan.listWidth, cache, sel, pattern, rows);
        DecodeMetaInterpreter.assertMatches(what + " direct, sms " + sms, want, DecodeMetaInterpreter.run(meta,
                plan.scalars, plan.items, plan.merges, plan.scratchEntries, q, st.k(), st.v(), scale));
        // a prepared step's, laid out for a longer maximum
        int maxLength = max + r.nextInt(50);
        int step = cache instanceof PagedKvCache ? pageSize : 0;
        int longest = DecodeStepLayout.maxVisits(pattern, step, rows, maxLength);
        int fixed = r.nextBoolean() ? 0 : 1 + r.nextInt(100);
        int chunks = fixed > 0 ? Math.max(1, (longest + fixed - 1) / fixed) : 1 + r.nextInt(8);
        int width = step > 0 ? (maxLength + step - 1) / step : 0;
        DecodeStepLayout l = new DecodeStepLayout(batch, kvHeads, group * rows, chunks, chunks > 1 ? fixed : 0, width,
                pattern, step, rows, maxLength);
        int[] stepMeta = new int[l.size];
        int[][] tables = null;
        if (cache instanceof PagedKvCache p) {
            tables = new int[batch][];
            for (int b = 0; b < batch; b++) {
                tables[b] = p.blockTable(b);
            }
        }
        l.write(stepMeta, lengths, tables);
        long[] keys = DecodeMetaInterpreter.fillChoiceLists(stepMeta, l.oLists, l.listWidth, cache, sel, pattern, rows);
        for (int u = 0; u < keys.length; u++) {
            assertEquals(l.visits(lengths[u / kvHeads]), keys[u], what + " unit " + u);
        }
        long[] scalars = CudaDecode.scalars(q, st.k(), st.v(), null, null, group, rows, step > 0,
                step > 0 ? Integer.numberOfTrailingZeros(step) : 0, width, l.mode, kvHeads, batch, l.offsets(),
                l.listWidth, scale, 0);
        DecodeMetaInterpreter.assertMatches(what + " step, chunks " + chunks + " fixed " + fixed, want,
                DecodeMetaInterpreter.run(stepMeta, scalars, l.items, l.merges, l.scratchEntries, q, st.k(), st.v(), scale));
    }
}
