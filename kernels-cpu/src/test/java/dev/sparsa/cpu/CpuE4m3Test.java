package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.Attention;
import dev.sparsa.attention.AttentionResult;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.RandomPlans;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.api.Test;

/**
 * e4m3 inputs on the CPU: the kernel computes exactly what it computes on f32 inputs that hold the same
 * values, where those values are made here from the codes and scales by plain arithmetic (so a wrong
 * scale in the tensor's own reads, which the oracle shares, still fails), and it meets the fp64
 * oracle well inside the e4m3 tolerance.
 */
class CpuE4m3Test {

    /** Random codes (no NaN) and a scale per head. */
    record Codes(byte[] codes, float[] scales, int batch, int heads, int seq, int dim) {
        Tensor e4m3(Layout layout) {
            return Tensor.ofE4m3(codes, scales, layout, batch, heads, seq, dim);
        }

        /** The same values in f32: code value times the head's scale, computed without {@link Tensor}. */
        Tensor f32(Layout layout) {
            float[] v = new float[codes.length];
            long[] st = layout.strides(batch, heads, seq, dim);
            for (int b = 0; b < batch; b++) {
                for (int h = 0; h < heads; h++) {
                    for (int s = 0; s < seq; s++) {
                        for (int d = 0; d < dim; d++) {
                            int i = (int) (b * st[0] + h * st[1] + s * st[2] + d * st[3]);
                            v[i] = widen(codes[i]) * scales[h];
                        }
                    }
                }
            }
            return Tensor.of(v, layout, batch, heads, seq, dim);
        }
    }

    /** The OCP E4M3FN value of a code from its fields: (−1)^s · 2^(e−7) · (1 + m/8), or 2^−6 · m/8. */
    static float widen(byte code) {
        int c = code & 0xFF;
        int e = (c >>> 3) & 0xF;
        int m = c & 7;
        double v = e == 0 ? Math.scalb(m / 8.0, -6) : Math.scalb(1 + m / 8.0, e - 7);
        return (float) ((c & 0x80) != 0 ? -v : v);
    }

    static Codes codes(long seed, int batch, int heads, int seq, int dim, double amplitude) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] codes = new byte[batch * heads * seq * dim];
        for (int i = 0; i < codes.length; i++) {
            int c = r.nextInt(0x7F); // every non-NaN magnitude
            codes[i] = (byte) (r.nextBoolean() ? c : c | 0x80);
        }
        float[] scales = new float[heads];
        for (int h = 0; h < heads; h++) {
            scales[h] = (float) (amplitude / 448 * (0.5 + r.nextDouble()));
        }
        return new Codes(codes, scales, batch, heads, seq, dim);
    }

    static java.util.stream.Stream<KernelFlavour> flavours() {
        return java.util.stream.Stream.of(KernelFlavour.values()).filter(f -> f == KernelFlavour.SCALAR
                || TileMathProvider.best().flavour() == KernelFlavour.VECTOR);
    }

    @ParameterizedTest
    @MethodSource("flavours")
    void computesExactlyWhatF32InputsOfTheSameValuesGive(KernelFlavour flavour) {
        AttentionShape s = new AttentionShape(2, 4, 2, 45, 70, 24, 16);
        SplittableRandom r = new SplittableRandom(11);
        for (int round = 0; round < 4; round++) {
            Options o = (round % 2 == 0 ? Options.causalMask() : Options.defaults())
                    .withGeometry(new TileGeometry(16, 16)).withOutputDType(DType.F32);
            PlanContext ctx = PlanContext.of(s, o);
            SparsePlan plan = switch (round) {
                case 0 -> Dense.INSTANCE.plan(ctx);
                case 1 -> RandomPlans.randomBlockSparse(r.nextLong(), ctx, 0.4);
                default -> RandomPlans.randomPlan(r.nextLong(), ctx, round == 3);
            };
            Layout layout = round % 2 == 0 ? Layout.BSHD : Layout.BHSD;
            Codes q = codes(r.nextLong(), 2, 4, 45, 24, 3);
            Codes k = codes(r.nextLong(), 2, 2, 70, 24, 3);
            Codes v = codes(r.nextLong(), 2, 2, 70, 16, 1);
            CpuBackend backend = new CpuBackend(flavour, 2);
            Tensor out8 = Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 45, 16);
            Tensor lse8 = Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 45, 1);
            backend.forward(plan, q.e4m3(layout), k.e4m3(layout), v.e4m3(layout), out8, lse8, o);
            Tensor out32 = Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 45, 16);
            Tensor lse32 = Tensor.allocate(DType.F32, Layout.BHSD, 2, 4, 45, 1);
            backend.forward(plan, q.f32(layout), k.f32(layout), v.f32(layout), out32, lse32, o);
            assertTrue(Fixtures.bitwiseEqual(out8, out32) && Fixtures.bitwiseEqual(lse8, lse32),
                    "round " + round + ": e4m3 and f32 inputs of the same values differ");
            ReferenceResult ref = dev.sparsa.reference.ReferenceAttention.plan(plan, q.f32(layout), k.f32(layout),
                    v.f32(layout), o);
            assertTrue(ref.maxRelativeError(out8) <= Tolerance.output(DType.F32), "round " + round);
            assertTrue(ref.maxLseError(lse8) <= Tolerance.lse(DType.F32), "round " + round);
        }
    }

    @Test
    void theFacadeRunsE4m3OnTheCpuWithABf16OutputNearTheOracle() {
        // per-head absmax quantisation of random f32 inputs, GQA 4:2, causal
        SplittableRandom r = new SplittableRandom(17);
        Tensor q = Tensor.quantizeE4m3PerHead(dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BSHD, 1, 4, 60, 32, 2),
                Layout.BSHD);
        Tensor k = Tensor.quantizeE4m3PerHead(dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BSHD, 1, 2, 60, 32, 2),
                Layout.BSHD);
        Tensor v = Tensor.quantizeE4m3PerHead(dev.sparsa.testing.Problems.random(r, DType.F32, Layout.BSHD, 1, 2, 60, 32, 1),
                Layout.BSHD);
        Options o = Options.causalMask();
        AttentionResult res = Attention.forwardWithLse(q, k, v, Dense.INSTANCE, o);
        assertEquals(DType.BF16, res.output().dtype(), "e4m3 inputs write bf16 unless told otherwise");
        ReferenceResult ref = dev.sparsa.reference.ReferenceAttention.plan(
                Dense.INSTANCE.plan(PlanContext.of(AttentionShape.of(q, k, v), o)), q, k, v, o);
        double err = ref.maxRelativeError(res.output());
        // the f32 arithmetic leaves only the bf16 output's rounding (2^-9 relative per element)
        assertTrue(err <= 4e-3, "relative error " + err);
        assertTrue(err <= Tolerance.output(DType.E4M3));
        assertTrue(ref.maxLseError(res.lse()) <= 1e-4);
    }

    @Test
    void aBf16QueryAgainstE4m3KeysAndValuesIsTheF32CallOnTheirValues() {
        AttentionShape s = new AttentionShape(1, 4, 2, 37, 90, 32, 32);
        Options o = Options.causalMask().withGeometry(new TileGeometry(16, 16)).withOutputDType(DType.F32);
        SparsePlan plan = RandomPlans.randomBlockSparse(5, PlanContext.of(s, o), 0.5);
        Tensor q = dev.sparsa.testing.Problems.random(new SplittableRandom(2), DType.BF16, Layout.BSHD, 1, 4, 37, 32, 2);
        Codes k = codes(3, 1, 2, 90, 32, 2);
        Codes v = codes(4, 1, 2, 90, 32, 1);
        CpuBackend backend = new CpuBackend(2);
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 37, 32);
        backend.forward(plan, q, k.e4m3(Layout.BSHD), v.e4m3(Layout.BSHD), out, null, o);
        Tensor want = Tensor.allocate(DType.F32, Layout.BHSD, 1, 4, 37, 32);
        backend.forward(plan, q.to(DType.F32, Layout.BSHD), k.f32(Layout.BSHD), v.f32(Layout.BSHD), want, null, o);
        assertTrue(Fixtures.bitwiseEqual(want, out));
        // the facade runs it on the CPU (the dtype it runs in is e4m3) and writes Q's default output type
        AttentionResult r = Attention.forwardWithLse(q, k.e4m3(Layout.BSHD), v.e4m3(Layout.BSHD), Dense.INSTANCE,
                Options.causalMask());
        assertEquals(DType.BF16, r.output().dtype());
        assertEquals(DType.E4M3, dev.sparsa.backend.ForwardArguments.inputType(q.dtype(), DType.E4M3));
    }

    @Test
    void refusesE4m3OutputsAndMixedInputs() {
        AttentionShape s = new AttentionShape(1, 2, 2, 16, 16, 8, 8);
        Options o = Options.defaults().withGeometry(new TileGeometry(8, 8));
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, o));
        Tensor q = codes(1, 1, 2, 16, 8, 1).e4m3(Layout.BHSD);
        Tensor k = codes(2, 1, 2, 16, 8, 1).e4m3(Layout.BHSD);
        Tensor v = codes(3, 1, 2, 16, 8, 1).e4m3(Layout.BHSD);
        CpuBackend backend = new CpuBackend(1);
        Tensor out = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 16, 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> backend.forward(plan, q, k, v, out, null, o));
        assertEquals("out: dtype must be f32 or bf16 for e4m3 inputs, got e4m3", e.getMessage());
        Tensor kBf16 = k.to(DType.BF16, Layout.BHSD);
        Tensor ok = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 2, 16, 8);
        e = assertThrows(IllegalArgumentException.class, () -> backend.forward(plan, q, kBf16, v, ok, null, o));
        assertEquals("dtype: q, k and v must share one dtype (q may differ from e4m3 k and v), got e4m3, bf16, e4m3",
                e.getMessage());
        Tensor qBf16 = q.to(DType.BF16, Layout.BHSD);
        e = assertThrows(IllegalArgumentException.class, () -> backend.forward(plan, qBf16, k, kBf16, ok, null, o));
        assertEquals("dtype: q, k and v must share one dtype (q may differ from e4m3 k and v), got bf16, e4m3, bf16",
                e.getMessage());
    }
}
