package dev.sparsa.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.attention.Sharding;
import dev.sparsa.attention.DispatchDecision;
import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.CatalogueEntry;
import dev.sparsa.patterns.PatternCatalogue;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RaggedPlan;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RaggedBatch;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The cross-backend conformance suite: every backend against the fp64 oracle at the tolerances of
 * the numerics contract (relative Frobenius error of the output per (batch, head) slice: f32 1e-5,
 * f16 2e-3, bf16 1e-2; LSE within 1e-4 for f32 inputs). A backend subclass supplies {@link
 * #backend()}; configurations the backend refuses ({@link AttentionBackend#refusal}) are skipped
 * with the reason, so the report counts them.
 *
 * <p>Head dims are those every backend is meant to cover (64, 80, 96, 128, 256, plus value dims
 * that differ from the key dim); smaller ones are exercised by each backend's own tests.
 */
public abstract class BackendConformance {

    /** The backend under test. */
    protected abstract AttentionBackend backend();

    @BeforeEach
    void requireAvailable() {
        Assumptions.assumeTrue(backend().availability().available(),
                () -> backend().name() + " unavailable: " + backend().availability().reason());
    }

    /** Random plans using every IR feature, over random shapes. */
    static Stream<Arguments> randomCases() {
        List<Arguments> cases = new ArrayList<>();
        int[][] dims = {{64, 64}, {80, 80}, {96, 96}, {128, 128}, {256, 256}, {128, 64}, {64, 128}};
        long seed = 1;
        for (DType dtype : DType.values()) {
            for (int[] d : dims) {
                for (int rep = 0; rep < 2; rep++, seed++) {
                    SplittableRandom rnd = new SplittableRandom(seed * 7919);
                    int kvHeads = rnd.nextInt(1, 3);
                    int group = new int[] {1, 2, 4}[rnd.nextInt(3)];
                    int nq = rnd.nextInt(1, 200);
                    int nk = rnd.nextInt(1, 260);
                    boolean causal = rnd.nextBoolean();
                    boolean big = rnd.nextInt(4) == 0;
                    TileGeometry g = big ? new TileGeometry(128, 128) : TileGeometry.DEFAULT;
                    AttentionShape s = new AttentionShape(rnd.nextInt(1, 3), kvHeads * group, kvHeads, nq, nk, d[0], d[1]);
                    Layout layout = rnd.nextBoolean() ? Layout.BHSD : Layout.BSHD;
                    cases.add(Arguments.of(dtype, s, g, causal, layout, seed));
                }
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2} causal={3} {4} seed={5}")
    @MethodSource("randomCases")
    void randomPlansMatchTheOracle(DType dtype, AttentionShape s, TileGeometry g, boolean causal, Layout layout, long seed) {
        skipIfRefused(s, dtype, g);
        Problems.Qkv x = Problems.qkv(seed, s, dtype, layout);
        Options o = Options.defaults().withCausal(causal).withGeometry(g).withOutputDType(DType.F32)
                .withSoftCap(seed % 3 == 0 ? 4f : 0f);
        SparsePlan plan = RandomPlans.randomPlan(seed, PlanContext.of(s, o), true);
        check(plan, x, o, dtype);
    }

    /** Dense attention through the plan road against the plain dense oracle (which knows no plans). */
    static Stream<Arguments> denseCases() {
        List<Arguments> cases = new ArrayList<>();
        for (DType dtype : DType.values()) {
            cases.add(Arguments.of(dtype, new AttentionShape(1, 4, 4, 150, 150, 64, 64), true, null));
            cases.add(Arguments.of(dtype, new AttentionShape(2, 4, 1, 70, 200, 128, 128), true, null));
            cases.add(Arguments.of(dtype, new AttentionShape(1, 2, 2, 1, 333, 128, 128), true, null));
            cases.add(Arguments.of(dtype, new AttentionShape(1, 8, 2, 129, 129, 96, 96), false, null));
            cases.add(Arguments.of(dtype, new AttentionShape(1, 2, 2, 100, 90, 64, 64), true, 0));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "dense {0} {1} causal={2} offset={3}")
    @MethodSource("denseCases")
    void denseMatchesThePlainOracle(DType dtype, AttentionShape s, boolean causal, Integer offset) {
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(s.hashCode(), s, dtype, Layout.BHSD);
        Options o = Options.defaults().withCausal(causal).withQueryOffset(offset).withOutputDType(DType.F32);
        AttentionResult r = Attention.run(backend(), Attention.plan(x.q(), x.k(), x.v(), Dense.INSTANCE, o),
                x.q(), x.k(), x.v(), o, true);
        ReferenceResult ref = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
        assertWithin(ref, r, dtype, "dense");
    }

    /** Output in the input's dtype (rounded once at the end) stays within the dtype's tolerance. */
    @ParameterizedTest(name = "output in {0}")
    @MethodSource("narrowTypes")
    void outputInInputDtype(DType dtype) {
        AttentionShape s = new AttentionShape(1, 2, 1, 97, 131, 128, 128);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(99, s, dtype, Layout.BSHD);
        Options o = Options.causalMask();
        SparsePlan plan = RandomPlans.randomBlockSparse(5, PlanContext.of(s, o), 0.5);
        AttentionResult r = Attention.run(backend(), plan, x.q(), x.k(), x.v(), o, true);
        assertEquals(dtype, r.output().dtype());
        ReferenceResult ref = ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o);
        assertWithin(ref, r, dtype, "output in " + dtype);
    }

    static Stream<DType> narrowTypes() {
        return Stream.of(DType.F16, DType.BF16);
    }

    /** No keys at all, and queries that sit before every key: zeros and −∞, never NaN. */
    @ParameterizedTest(name = "empty rows {0}")
    @MethodSource("allTypes")
    void emptyRowsAreZeroAndMinusInfinity(DType dtype) {
        AttentionShape s = new AttentionShape(1, 2, 2, 80, 70, 64, 64);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(3, s, dtype, Layout.BHSD);
        Options o = Options.causalMask().withQueryOffset(-30).withOutputDType(DType.F32); // rows 0..29 see nothing
        AttentionResult r = Attention.run(backend(), Attention.plan(x.q(), x.k(), x.v(), Dense.INSTANCE, o),
                x.q(), x.k(), x.v(), o, true);
        for (int h = 0; h < 2; h++) {
            for (int row = 0; row < 80; row++) {
                float lse = r.lse().get(0, h, row, 0);
                assertFalse(Float.isNaN(lse));
                for (int d = 0; d < 64; d++) {
                    float v = r.output().get(0, h, row, d);
                    assertFalse(Float.isNaN(v), "NaN at row " + row);
                    if (row < 30) {
                        assertEquals(0f, v, "row " + row + " has no key");
                    }
                }
                if (row < 30) {
                    assertEquals(Float.NEGATIVE_INFINITY, lse);
                }
            }
        }
        ReferenceResult ref = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
        assertWithin(ref, r, dtype, "offset -30");
    }

    static Stream<DType> allTypes() {
        return Stream.of(DType.values());
    }

    /** Skips (with the reason) a configuration the backend declares it does not run. */
    protected void skipIfRefused(AttentionShape s, DType dtype, TileGeometry g) {
        String why = backend().refusal(s, dtype, g);
        Assumptions.assumeTrue(why == null, () -> backend().name() + " refuses: " + why);
    }

    /** Runs the plan on the backend and compares output and LSE with the plan oracle. */
    protected void check(SparsePlan plan, Problems.Qkv x, Options o, DType dtype) {
        AttentionResult r = Attention.run(backend(), plan, x.q(), x.k(), x.v(), o, true);
        ReferenceResult ref = ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o);
        assertWithin(ref, r, dtype, plan.description());
    }

    /** The numerics contract's tolerances for an input dtype. */
    protected static void assertWithin(ReferenceResult ref, AttentionResult r, DType dtype, String what) {
        double err = ref.maxRelativeError(r.output());
        assertTrue(err <= Problems.tolerance(dtype), what + ": relative error " + err + " > " + Problems.tolerance(dtype));
        if (r.lse() != null) {
            double ratio = ref.maxLseErrorRatio(r.lse(), dtype);
            assertTrue(ratio <= 1, what + ": LSE error " + ref.maxLseError(r.lse()) + ", " + ratio + " × its bound");
        }
    }

    /** Every catalogue entry of every pattern family, causal and not, on small GQA shapes. */
    static Stream<Arguments> catalogueCases() {
        List<Arguments> cases = new ArrayList<>();
        List<CatalogueEntry> entries = PatternCatalogue.examples();
        for (int i = 0; i < entries.size(); i++) {
            CatalogueEntry e = entries.get(i);
            DType dtype = DType.values()[i % 3];
            cases.add(Arguments.of(e.family(), e.description(), i, dtype, true));
            cases.add(Arguments.of(e.family(), e.description(), i, DType.values()[(i + 1) % 3], false));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}: {1} ({3}, causal={4})")
    @MethodSource("catalogueCases")
    void everyFamilyMatchesTheOracle(String family, String description, int index, DType dtype, boolean causal) {
        Pattern pattern = PatternCatalogue.examples().get(index).pattern();
        AttentionShape s = new AttentionShape(1, 4, 2, 300, 300, 64, 64);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(index * 31L + (causal ? 1 : 0), s, dtype, Layout.BHSD);
        Options o = Options.defaults().withCausal(causal).withOutputDType(DType.F32);
        SparsePlan plan = Attention.plan(x.q(), x.k(), x.v(), pattern, o);
        check(plan, x, o, dtype);
    }

    /** A prepared plan gives the same bits on every run, and the same bits as a one-shot call. */
    @ParameterizedTest(name = "prepared {0}")
    @MethodSource("narrowTypes")
    void aPreparedPlanRunsRepeatWithTheOneShotBits(DType dtype) {
        AttentionShape s = new AttentionShape(1, 4, 2, 150, 170, 64, 64);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(17, s, dtype, Layout.BHSD);
        Options o = Options.causalMask().withGeometry(TileGeometry.DEFAULT);
        SparsePlan plan = RandomPlans.randomPlan(17, PlanContext.of(s, o), true);
        AttentionResult once = Attention.run(backend(), plan, x.q(), x.k(), x.v(), o, true);
        try (PreparedPlan prepared = backend().prepare(plan)) {
            assertEquals(backend().name(), prepared.backend().name());
            for (int i = 0; i < 2; i++) {
                AttentionResult again = Attention.forwardWithLse(prepared, x.q(), x.k(), x.v(), o.run());
                assertArrayEquals(once.output().toFloatArray(), again.output().toFloatArray(), "run " + i);
                assertArrayEquals(once.lse().toFloatArray(), again.lse().toFloatArray(), "lse run " + i);
            }
        }
    }

    /** Every pattern family on a ragged batch, packed and padded, each sequence against the oracle alone. */
    static Stream<Arguments> raggedCases() {
        List<Arguments> cases = new ArrayList<>();
        List<Pattern> patterns = RaggedCases.patterns();
        for (int i = 0; i < patterns.size(); i++) {
            for (RaggedBatch.Layout layout : RaggedBatch.Layout.values()) {
                DType dtype = (i + layout.ordinal()) % 2 == 0 ? DType.F32 : DType.BF16;
                cases.add(Arguments.of(patterns.get(i).name(), i, layout, dtype));
            }
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "ragged {0} {2} {3}")
    @MethodSource("raggedCases")
    void raggedBatchesMatchEachSequenceAlone(String name, int index, RaggedBatch.Layout layout, DType dtype) {
        Pattern pattern = RaggedCases.patterns().get(index);
        RaggedBatch batch = RaggedCases.batch(layout);
        AttentionShape longest = new AttentionShape(1, 2, 1, batch.maxQueryLength(), batch.maxKeyLength(), 64, 64);
        skipIfRefused(longest, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = RaggedCases.inputs(index * 13L + layout.ordinal(), batch, 2, 1, 64, dtype);
        Options o = Options.causalMask().withGeometry(TileGeometry.DEFAULT).withOutputDType(DType.F32);
        RaggedPlan plan = Attention.plan(x.q(), x.k(), x.v(), batch, pattern, o);
        AttentionResult r = Attention.run(backend(), plan, x.q(), x.k(), x.v(), o, true);
        for (int i = 0; i < batch.sequences(); i++) {
            Tensor out = batch.queries(r.output(), i);
            Tensor lse = batch.queries(r.lse(), i);
            if (batch.queryLength(i) == 0) {
                continue;
            }
            // the sequence alone: copied out of the batch, planned on its own
            Tensor q = batch.queries(x.q(), i).to(dtype, Layout.BHSD);
            Tensor k = batch.keys(x.k(), i).to(dtype, Layout.BHSD);
            Tensor v = batch.keys(x.v(), i).to(dtype, Layout.BHSD);
            SparsePlan alone = batch.keyLength(i) == 0 ? SparsePlan.empty(PlanContext.of(AttentionShape.of(q, k, v), o))
                    : Attention.plan(q, k, v, pattern, o);
            assertEquals(alone.pairsAdmitted(), plan.plan(i).pairsAdmitted(), "sequence " + i + " plans as if alone");
            ReferenceResult ref = ReferenceAttention.plan(alone, q, k, v, o, RaggedCases.rows(batch.queryLength(i)));
            double err = ref.maxRelativeError(out);
            assertTrue(err <= Problems.tolerance(dtype), name + " sequence " + i + " (" + batch.queryLength(i) + "/"
                    + batch.keyLength(i) + "): relative error " + err);
            double lseErr = ref.maxLseError(lse);
            assertTrue(lseErr <= (dtype == DType.F32 ? 1e-4 : 1e-2), name + " sequence " + i + ": LSE error " + lseErr);
        }
        if (layout == RaggedBatch.Layout.PADDED) {
            for (int i = 0; i < batch.sequences(); i++) {
                for (int s = batch.queryLength(i); s < batch.maxQueryLength(); s += 97) {
                    assertEquals(0f, r.output().get(i, 1, s, 5), "padded row " + s + " of sequence " + i);
                    assertEquals(Float.NEGATIVE_INFINITY, r.lse().get(i, 0, s, 0));
                }
            }
        }
    }

    /**
     * The drop-in call on a ragged batch with the default dispatch: every sequence's output is the
     * oracle of the plan the dispatch chose for it, and that plan admits every pair the pattern's does.
     */
    @ParameterizedTest(name = "ragged drop-in {0}")
    @MethodSource("raggedDropInPatterns")
    void raggedDropInRunsWhatTheDispatchChose(String name, Pattern pattern) {
        RaggedBatch batch = RaggedBatch.packedLengths(1, 64, 700);
        AttentionShape longest = new AttentionShape(1, 2, 1, 700, 700, 64, 64);
        skipIfRefused(longest, DType.F32, TileGeometry.DEFAULT);
        Problems.Qkv x = RaggedCases.inputs(77, batch, 2, 1, 64, DType.F32);
        Options o = Options.causalMask().withGeometry(TileGeometry.DEFAULT).withDevice(backend().defaultDevice());
        AttentionResult r = Attention.forwardWithLse(x.q(), x.k(), x.v(), batch, pattern, o);
        RaggedPlan own = Attention.plan(x.q(), x.k(), x.v(), batch, pattern, o);
        assertEquals(batch.sequences(), r.dispatch().size());
        for (int i = 0; i < batch.sequences(); i++) {
            DispatchDecision d = r.dispatch().get(i);
            Tensor q = batch.queries(x.q(), i);
            Tensor k = batch.keys(x.k(), i);
            Tensor v = batch.keys(x.v(), i);
            ReferenceResult ref = ReferenceAttention.plan(d.plan(), q, k, v, o);
            assertTrue(ref.maxRelativeError(batch.queries(r.output(), i)) <= 1e-5, name + " sequence " + i + ": " + d);
            assertTrue(d.plan().pairsAdmitted() >= own.plan(i).pairsAdmitted(), "a substitute admits more: " + d);
        }
    }

    static Stream<Arguments> raggedDropInPatterns() {
        return Stream.of(Arguments.of("window", Patterns.aShape(128, 4)),
                Arguments.of("exact top-k", Patterns.topK(16).withSinks(4).withWindow(16)),
                Arguments.of("top-k per block", Patterns.topKPerQueryBlock(64, 4, 32)));
    }

    /** Options that contradict a plan are refused through the facade as through the backend. */
    @org.junit.jupiter.api.Test
    void optionsThatContradictThePlanAreRefused() {
        AttentionShape s = new AttentionShape(1, 2, 2, 128, 128, 64, 64);
        skipIfRefused(s, DType.F32, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(3, s, DType.F32, Layout.BHSD);
        SparsePlan causal64 = Dense.INSTANCE.plan(PlanContext.of(s, Options.causalMask().withGeometry(TileGeometry.DEFAULT)));
        Options nonCausal32 = Options.defaults().withGeometry(new TileGeometry(32, 32));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Attention.run(backend(), causal64, x.q(), x.k(), x.v(), nonCausal32, false));
        assertTrue(e.getMessage().contains("causal=false") && e.getMessage().contains("causal=true"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Attention.forward(causal64, x.q(), x.k(), x.v(), Options.causalMask().withGeometry(new TileGeometry(32, 32))));
        assertTrue(e.getMessage().contains("geometry 32x32") && e.getMessage().contains("geometry 64x64"), e.getMessage());
    }

    /**
     * NSA on this backend: the three branches (compressed, selected, window) run as ordinary calls
     * and mixed by gates equal the same mix of the branches' fp64 oracles, per slice within the
     * dtype's tolerance.
     */
    @ParameterizedTest(name = "NSA {0}")
    @MethodSource("narrowTypes")
    void nativeSparseAttentionMixesItsBranchesLikeTheOracle(DType dtype) {
        AttentionShape s = new AttentionShape(1, 4, 2, 200, 200, 64, 64);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(23, s, dtype, Layout.BHSD);
        Options o = Options.causalMask().withGeometry(TileGeometry.DEFAULT);
        dev.sparsa.tensor.Tensor gates = Problems.random(new SplittableRandom(5), DType.F32, Layout.BHSD, 1, 4, 200, 3, 1.0);
        var nsa = new dev.sparsa.patterns.nsa.NativeSparseAttention(16, 4, 32);
        var r = nsa.forward(backend(), x.q(), x.k(), x.v(), gates, o);
        PlanContext ctx = PlanContext.of(s, o);
        ReferenceResult sel = ReferenceAttention.plan(nsa.selection(Double.NaN).plan(ctx, x.q(), x.k()), x.q(), x.k(), x.v(), o);
        ReferenceResult win = ReferenceAttention.plan(nsa.slidingWindow().plan(ctx), x.q(), x.k(), x.v(), o);
        var kc = dev.sparsa.patterns.nsa.NsaCompression.meanPool(x.k(), 16).to(dtype, Layout.BHSD);
        var vc = dev.sparsa.patterns.nsa.NsaCompression.meanPool(x.v(), 16).to(dtype, Layout.BHSD);
        Options open = o.withCausal(false);
        SparsePlan cmpPlan = new dev.sparsa.patterns.nsa.NsaCompressedBranch(16, 0, true)
                .plan(PlanContext.of(AttentionShape.of(x.q(), kc, vc), open));
        ReferenceResult cmp = ReferenceAttention.plan(cmpPlan, x.q(), kc, vc, open);
        float[] row = new float[64];
        for (int h = 0; h < 4; h++) {
            double num = 0;
            double den = 0;
            for (int q = 0; q < 200; q++) {
                r.output().readRow(0, h, q, row, 0);
                for (int c = 0; c < 64; c++) {
                    double want = gates.get(0, h, q, 0) * cmp.out(0, h, q, c) + gates.get(0, h, q, 1) * sel.out(0, h, q, c)
                            + gates.get(0, h, q, 2) * win.out(0, h, q, c);
                    num += (row[c] - want) * (row[c] - want);
                    den += want * want;
                }
            }
            double err = Math.sqrt(num / den);
            assertTrue(err <= Problems.tolerance(dtype), "NSA head " + h + ": relative error " + err);
        }
    }

    /** A caller's token and block lists (an indexer's or a gate's output, padded with −1) run like their oracle. */
    @ParameterizedTest(name = "supplied selections {0}")
    @MethodSource("narrowTypes")
    void suppliedSelectionsMatchTheOracle(DType dtype) {
        AttentionShape s = new AttentionShape(1, 4, 2, 180, 180, 64, 64);
        skipIfRefused(s, dtype, TileGeometry.DEFAULT);
        Problems.Qkv x = Problems.qkv(29, s, dtype, Layout.BHSD);
        Options o = Options.causalMask().withOutputDType(DType.F32);
        SplittableRandom rnd = new SplittableRandom(31);
        int[] tokens = new int[2 * 180 * 40];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = rnd.nextInt(10) == 0 ? -1 : rnd.nextInt(180);
        }
        int[] blocks = new int[2 * 180 * 3];
        for (int i = 0; i < blocks.length; i++) {
            blocks[i] = rnd.nextInt(12);
        }
        for (Pattern p : List.of(
                dev.sparsa.patterns.Patterns.tokenIndices(dev.sparsa.tensor.IndexTensor.of(tokens, 1, 2, 180, 40)),
                dev.sparsa.patterns.Patterns.rowBlockIndices(dev.sparsa.tensor.IndexTensor.of(blocks, 1, 2, 180, 3), null, 16))) {
            SparsePlan plan = Attention.plan(x.q(), x.k(), x.v(), p, o);
            check(plan, x, o, dtype);
        }
    }

    /**
     * One attention split over "two devices" that are this backend's one device: by key range
     * (merged through the LSE) and by heads, for dense, causal and every static catalogue pattern.
     * Each result equals the oracle of the unsplit plan.
     */
    @ParameterizedTest(name = "sharded {0} {1}")
    @MethodSource("shardedCases")
    void oneAttentionSplitOverTwoDevicesEqualsTheWhole(Sharding.Mode mode, String pattern, int index, boolean causal) {
        AttentionShape s = new AttentionShape(1, 4, 2, 257, 300, 64, 64);
        skipIfRefused(s, DType.F32, TileGeometry.DEFAULT);
        Pattern p = index < 0 ? Dense.INSTANCE : PatternCatalogue.examples().get(index).pattern();
        Problems.Qkv x = Problems.qkv(41 + index, s, DType.F32, Layout.BSHD);
        Options o = Options.defaults().withCausal(causal).withGeometry(TileGeometry.DEFAULT);
        dev.sparsa.tensor.Device d = backend().defaultDevice();
        AttentionResult r = Attention.forwardSharded(x.q(), x.k(), x.v(), p, o, new Sharding(mode, List.of(d, d)));
        SparsePlan plan = Attention.plan(x.q(), x.k(), x.v(), p, o);
        ReferenceResult ref = ReferenceAttention.plan(plan, x.q(), x.k(), x.v(), o);
        assertWithin(ref, new AttentionResult(r.output().toHost(), r.lse().toHost()), DType.F32, mode + " " + pattern);
        r.output().close();
        r.lse().close();
    }

    static Stream<Arguments> shardedCases() {
        List<Arguments> cases = new ArrayList<>();
        for (Sharding.Mode mode : Sharding.Mode.values()) {
            cases.add(Arguments.of(mode, "dense", -1, false));
            cases.add(Arguments.of(mode, "causal", -1, true));
        }
        List<CatalogueEntry> entries = PatternCatalogue.examples();
        for (int i = 0; i < entries.size(); i++) {
            if (!entries.get(i).pattern().dataDependent()) {
                cases.add(Arguments.of(Sharding.Mode.KEYS, entries.get(i).description(), i, i % 2 == 0));
            }
        }
        return cases.stream();
    }
}
