package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The e4m3 (FP8) Hopper kernel {@code sparsa_wg_e4m3_d128_r128}: e4m3 Q, K and V with a scale per
 * head (or per tensor) against the fp64 oracle, which reads the same values ({@code code × scale}),
 * at {@link Tolerance#output(DType) e4m3's tolerance} (the kernel rounds the probabilities to e4m3
 * before P·V); dense, causal, window, random-block, gathered-key and listed-row plans with GQA and
 * enough key blocks to wrap the pipeline several times; host and device tensors; bf16 and f32 outputs.
 * Needs a compute capability 9.0 GPU: skipped elsewhere (the routing test also runs on other GPUs).
 */
@Tag("gpu")
@org.junit.jupiter.api.extension.ExtendWith(E4m3SwitchOn.class)
class CudaE4m3GpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final TileGeometry G128 = new TileGeometry(128, 128);
    private static final AttentionShape SHAPE = new AttentionShape(1, 8, 2, 700, 1650, 128, 128);

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    private static boolean hopper() {
        return BACKEND.device().computeCapability() == KernelChoice.HOPPER;
    }

    @Test
    void e4m3RunsTheHopperKernelThereAndIsRefusedElsewhere() {
        if (hopper()) {
            assertEquals("sparsa_wg_e4m3_d128_r128", BACKEND.kernelFor(SHAPE, DType.E4M3, G128).name());
            assertEquals(G128, BACKEND.proposedGeometry(SHAPE, DType.E4M3));
            assertEquals(null, BACKEND.refusal(SHAPE, DType.E4M3, G128));
        } else {
            assertTrue(BACKEND.refusal(SHAPE, DType.E4M3, G128).startsWith("dtype: the CUDA backend runs e4m3"));
        }
        // a wider Q against e4m3 K and V is left to the CPU backend
        assertTrue(BACKEND.refusal(SHAPE, DType.BF16, DType.E4M3, G128).contains("q is bf16"));
        assertEquals(BACKEND.refusal(SHAPE, DType.BF16, G128), BACKEND.refusal(SHAPE, DType.BF16, DType.BF16, G128));
    }

    static Stream<String> plans() {
        return Stream.of("dense", "causal", "window-300", "blocks-30%", "gathered+listed", "random-weighted", "empty-tiles",
                "dense per-tensor scales", "dense f32 out",
                "causal large scores");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("plans")
    void matchesTheOracle(String pattern) {
        assumeTrue(hopper(), "the e4m3 kernel runs on compute capability 9.0");
        boolean causal = pattern.equals("causal") || pattern.startsWith("window") || pattern.equals("gathered+listed");
        Options o = Options.defaults().withGeometry(G128).withCausal(causal).withQueryOffset(causal ? 950 : null);
        PlanContext ctx = PlanContext.of(SHAPE, o);
        SparsePlan plan = switch (pattern) {
            case "window-300" -> CudaWgmmaGpuTest.window(ctx, 300);
            case "blocks-30%" -> RandomPlans.randomBlockSparse(17, ctx, 0.3);
            case "gathered+listed" -> CudaWgmmaGpuTest.gatheredAndListed(ctx, 5);
            case "random-weighted" -> RandomPlans.randomPlan(23, ctx, true);
            case "empty-tiles" -> CudaWgmmaGpuTest.emptyTiles(ctx);
            default -> Dense.INSTANCE.plan(ctx);
        };
        Problems.Qkv p = Problems.qkv(pattern.hashCode(), SHAPE, DType.E4M3, Layout.BHSD);
        Tensor q = p.q();
        Tensor k = p.k();
        Tensor v = p.v();
        if (pattern.contains("large scores")) {
            // codes uniform over ±3.4 and per-head scales up to 4 (Q) and 2 (K): scores of magnitude up to
            // about 350, where the FP8 accumulator's error, and the LSE bound's magnitude term, are large
            q = largeScores(q, 31, new float[] {0.25f, 0.5f, 1, 2, 4, 1, 2, 4});
            k = largeScores(k, 37, new float[] {2, 0.5f});
        }
        if (pattern.contains("per-tensor")) {
            q = q.withScales(q.scale(0));
            k = k.withScales(k.scale(1));
            v = v.withScales(v.scale(0));
        }
        DType outType = pattern.contains("f32") ? DType.F32 : DType.BF16;
        Tensor out = CudaAttentionGpuTest.poisoned(outType, Layout.BHSD, 1, 8, 700, 128);
        Tensor lse = CudaAttentionGpuTest.poisoned(DType.F32, Layout.BHSD, 1, 8, 700, 1);
        BACKEND.forward(plan, q, k, v, out, lse, o);
        assertTrue(plan.pairsAdmitted() > 0, pattern + ": the plan admits pairs");
        ReferenceResult ref = ReferenceAttention.plan(plan, q, k, v, o);
        double tol = Tolerance.output(DType.E4M3);
        double err = ref.maxRelativeError(out);
        String what = pattern + " (" + plan + ")";
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
        // P rounded to e4m3 costs about 2e-2 (E4m3ToleranceTest's model); far less would mean P is not rounded,
        // far more a wrong key order between P and Vᵀ
        assertTrue(err > 1e-4, what + ": relative error " + err + " is below what e4m3 probabilities give");
        // the LSE bound grows with the row's score magnitude (FP8 accumulation: Tolerance.lse(DType, double))
        double lseRatio = ref.maxLseErrorRatio(lse, DType.E4M3);
        assertTrue(lseRatio <= 1, what + ": LSE error " + ref.maxLseError(lse) + ", " + lseRatio + " × its bound");
    }

    /** A BHSD e4m3 tensor of {@code like}'s shape, codes of values uniform over ±3.4, the given head scales. */
    private static Tensor largeScores(Tensor like, long seed, float[] scales) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        byte[] codes = new byte[like.batch() * like.heads() * like.seqLen() * like.dim()];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = DType.floatToE4m3((float) ((r.nextDouble() - 0.5) * 6.8));
        }
        return Tensor.ofE4m3(codes, scales, Layout.BHSD, like.batch(), like.heads(), like.seqLen(), like.dim());
    }

    @Test
    void deviceTensorsGiveTheHostCallsOutputBitForBit() {
        assumeTrue(hopper(), "the e4m3 kernel runs on compute capability 9.0");
        Options o = Options.defaults().withGeometry(G128).withCausal(true);
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(SHAPE, o));
        Problems.Qkv p = Problems.qkv(41, SHAPE, DType.E4M3, Layout.BHSD);
        Tensor hostOut = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 8, 700, 128);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), hostOut, null, o);
        CudaDevice dev = BACKEND.device();
        try (Tensor dq = CudaTensors.upload(dev, p.q());
             Tensor dk = CudaTensors.upload(dev, p.k());
             Tensor dv = CudaTensors.upload(dev, p.v());
             Tensor dOut = CudaTensors.allocate(dev, DType.BF16, Layout.BHSD, 1, 8, 700, 128)) {
            assertArrayEquals(p.k().scales(), dk.scales(), "the upload carries the scales");
            BACKEND.forward(plan, dq, dk, dv, dOut, null, o);
            assertArrayEquals(bits(hostOut), bits(dOut.toHost()));
        }
    }

    @Test
    void aWiderQueryAgainstE4m3KeysIsRefusedWithItsReason() {
        assumeTrue(hopper(), "the e4m3 kernel runs on compute capability 9.0");
        Options o = Options.defaults().withGeometry(G128);
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(SHAPE, o));
        Problems.Qkv p = Problems.qkv(43, SHAPE, DType.E4M3, Layout.BHSD);
        Tensor q = Problems.qkv(43, SHAPE, DType.BF16, Layout.BHSD).q();
        Tensor out = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 8, 700, 128);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BACKEND.forward(plan, q, p.k(), p.v(), out, null, o));
        assertTrue(e.getMessage().startsWith("dtype: the CUDA backend's e4m3 kernel reads e4m3 q, k and v"), e.getMessage());
    }

    private static short[] bits(Tensor t) {
        short[] b = new short[(int) t.elementCount()];
        for (int i = 0; i < b.length; i++) {
            b[i] = t.segment().getAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED, i);
        }
        return b;
    }
}
