package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.cpu.panama.PanamaTileMath;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The vector kernel at the width in force: the preferred one in the default test run, and 256 and
 * 512 bits in the surefire executions that set {@code -Dsparsa.cpu.vectorBits} (see the module pom),
 * so both widths are covered on any machine. Sizes are small because a width the CPU lacks runs in
 * the Vector API's slow Java fallback.
 */
class VectorWidthTest {

    @ParameterizedTest
    @EnumSource(DType.class)
    void vectorKernelAtTheForcedWidthMatchesOracleAndScalar(DType dtype) {
        CpuBackend vector = new CpuBackend(KernelFlavour.VECTOR, 2);
        String forced = System.getProperty(TileMathProvider.VECTOR_BITS_PROPERTY);
        if (forced != null) {
            assertTrue(vector.kernelDescription().startsWith("vector " + forced + "-bit"), vector.kernelDescription());
        }
        System.err.println("VectorWidthTest: " + vector.kernelDescription());
        // 8·odd value dims leave a half vector at 512 bits; 24-row tiles leave odd row vectors
        AttentionShape s = new AttentionShape(1, 4, 2, 29, 43, 40, 24);
        for (boolean causal : new boolean[] {false, true}) {
            Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(24, 16))
                    .withSoftCap(causal ? 6f : 0f);
            SparsePlan plan = RandomPlans.randomPlan(17 + (causal ? 1 : 0), PlanContext.of(s, o), true);
            Problems.Qkv p = Problems.qkv(11, s, dtype, Layout.BHSD);
            Fixtures.Run v = Fixtures.run(vector, plan, p, o, DType.F32, Layout.BHSD);
            Fixtures.Run sc = Fixtures.run(new CpuBackend(KernelFlavour.SCALAR, 1), plan, p, o, DType.F32, Layout.BHSD);
            ReferenceResult ref = Fixtures.oracle(plan, p, o);
            assertTrue(ref.maxRelativeError(v.out()) <= 1e-5, "error " + ref.maxRelativeError(v.out()));
            assertTrue(ref.maxLseError(v.lse()) <= 1e-4);
            assertTrue(Fixtures.maxRelativeDifference(v.out(), sc.out()) <= 1e-5);
        }
    }

    /** Decode at the width in force: dims off the lane count, GQA, several rows, a paged and a sparse case. */
    @ParameterizedTest
    @EnumSource(DType.class)
    void decodeAtTheForcedWidthMatchesOracleAndScalar(DType dtype) {
        CpuBackend vector = new CpuBackend(KernelFlavour.VECTOR, 2);
        CpuBackend scalar = new CpuBackend(KernelFlavour.SCALAR, 1);
        dev.sparsa.testing.KvProblems.Caches c = dev.sparsa.testing.KvProblems.caches(21, dtype, new int[] {0, 37, 150},
                2, 40, 24, 16, 33);
        dev.sparsa.kv.DecodeOptions o = dev.sparsa.kv.DecodeOptions.defaults().withSplit(dev.sparsa.kv.SplitKv.fixed(64));
        for (int rows : new int[] {1, 3}) {
            dev.sparsa.tensor.Tensor q = DecodeFixtures.query(rows, c.paged(), 6, rows);
            for (dev.sparsa.kv.DecodeSelection sel : java.util.Arrays.asList(null,
                    vector.select(q, c.paged(), dev.sparsa.kv.DecodePattern.quest(48).withWindow(5), o))) {
                DecodeFixtures.Run v = DecodeFixtures.decode(vector, q, c.paged(), sel, o, DType.F32);
                DecodeFixtures.Run sc = DecodeFixtures.decode(scalar, q, c.contiguous(), sel, o, DType.F32);
                ReferenceResult ref = DecodeFixtures.oracle(q, c.paged(), sel, o);
                assertTrue(ref.maxRelativeError(v.out()) <= DecodeFixtures.tolerance(dtype),
                        "error " + ref.maxRelativeError(v.out()));
                assertTrue(Fixtures.maxRelativeDifference(v.out(), sc.out()) <= 1e-5);
            }
        }
    }

    @org.junit.jupiter.api.Test
    void inlinedExpIsWithinTwoUlpAndFlushesMaskedScoresToZero() {
        int lanes = PanamaTileMath.L;
        float[] x = new float[lanes];
        float[] y = new float[lanes];
        double worstUlps = 0;
        for (int i = 0; i <= 200_000; i++) {
            float arg = -90f * i / 200_000f;
            java.util.Arrays.fill(x, arg);
            PanamaTileMath.exp(jdk.incubator.vector.FloatVector.fromArray(PanamaTileMath.F, x, 0)).intoArray(y, 0);
            double exact = Math.exp(arg);
            if (arg < -87.33654f) {
                assertEquals(0f, y[0], "exp(" + arg + ") must flush to 0");
            } else {
                worstUlps = Math.max(worstUlps, Math.abs(y[0] - exact) / Math.ulp((float) exact));
            }
        }
        assertTrue(worstUlps <= 2, "worst error " + worstUlps + " ulp");
        java.util.Arrays.fill(x, Float.NEGATIVE_INFINITY);
        PanamaTileMath.exp(jdk.incubator.vector.FloatVector.fromArray(PanamaTileMath.F, x, 0)).intoArray(y, 0);
        assertEquals(0f, y[0]);
        java.util.Arrays.fill(x, 0f);
        PanamaTileMath.exp(jdk.incubator.vector.FloatVector.fromArray(PanamaTileMath.F, x, 0)).intoArray(y, 0);
        assertEquals(1f, y[0]);
    }

    @org.junit.jupiter.api.Test
    void e4m3WideningGivesTheTensorsValuesBitwise() {
        TileMath vector = TileMathProvider.vector();
        byte[] codes = new byte[3 * 256 + 7];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (i * 97 + i / 256);
        }
        float[] wide = new float[codes.length];
        for (float scale : new float[] {1f, 1f / 448, 0.37f, 3e-38f, 1e36f}) {
            for (int at = 0; at < 3; at++) {
                java.util.Arrays.fill(wide, -1f);
                vector.widenE4m3(codes, at, scale, wide, 1, codes.length - at - 1);
                for (int i = 0; i < codes.length - at - 1; i++) {
                    float expected = DType.e4m3ToFloat(codes[at + i]) * scale;
                    assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(wide[1 + i]),
                            "scale " + scale + " offset " + at + " element " + i + " code " + (codes[at + i] & 0xFF));
                }
                assertEquals(-1f, wide[0], "nothing written before dstAt");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F16", "BF16"})
    void bf16AndF16WideningIsExact(DType dtype) {
        TileMath vector = TileMathProvider.vector();
        short[] bits = new short[3 * vector.lanes() + 5];
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(5);
        for (int i = 0; i < bits.length; i++) {
            float x = (float) ((rnd.nextDouble() - 0.5) * Math.pow(2, rnd.nextInt(-20, 20)));
            bits[i] = dtype == DType.F16 ? Float.floatToFloat16(x) : DType.floatToBf16(x);
        }
        bits[0] = DType.floatToBf16(Float.NEGATIVE_INFINITY);
        float[] wide = new float[bits.length];
        if (dtype == DType.F16) {
            vector.widenF16(bits, 0, wide, 0, bits.length);
        } else {
            vector.widenBf16(bits, 0, wide, 0, bits.length);
        }
        for (int i = 0; i < bits.length; i++) {
            float expected = dtype == DType.F16 ? Float.float16ToFloat(bits[i]) : DType.bf16ToFloat(bits[i]);
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(wide[i]), "element " + i);
        }
    }

    /**
     * The tile setup and finish at the width in force (queries transposed in registers, gathered or
     * in scalar code, depending on rows and head dimension; rows normalised by vector division) give
     * bitwise the plain-Java results, also on rows scattered in the source.
     */
    @Test
    void transposeAndNormaliseMatchPlainJavaBitwise() {
        TileMath vector = new PanamaTileMath();
        TileMath plain = new ScalarTileMath();
        int lanes = PanamaTileMath.L;
        Random rnd = new Random(5);
        for (int rows : new int[] {1, 7, lanes - 1, lanes, lanes + 3, 2 * lanes, 3 * lanes + 5}) {
            for (int dim : new int[] {8, 16, 24, 40, 128, 136}) {
                int rowsPad = (rows + lanes - 1) / lanes * lanes;
                float[] src = new float[(rows + 5) * (dim + 3)];
                for (int i = 0; i < src.length; i++) {
                    src[i] = (float) rnd.nextGaussian();
                }
                int[] rowAt = new int[rowsPad];
                for (int r = 0; r < rows; r++) {
                    rowAt[r] = (rows - 1 - r) * (dim + 3) + 1; // reversed rows with a gap between them
                }
                float[] a = new float[dim * rowsPad];
                float[] b = new float[dim * rowsPad];
                java.util.Arrays.fill(a, Float.NaN);
                java.util.Arrays.fill(b, Float.NaN);
                vector.transposeScaled(src, rowAt, rows, rowsPad, dim, 0.37f, a);
                plain.transposeScaled(src, rowAt, rows, rowsPad, dim, 0.37f, b);
                assertArrayEquals(b, a, "transpose rows " + rows + " dim " + dim);
                float[] n1 = new float[dim + 2];
                float[] n2 = new float[dim + 2];
                vector.normalise(src, 3, 2.9f, n1, 1, dim);
                plain.normalise(src, 3, 2.9f, n2, 1, dim);
                assertArrayEquals(n2, n1, "normalise dim " + dim);
            }
        }
    }
}
