package dev.sparsa.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The e4m3 type against PyTorch's conversions, ported below, and against its definition by
 * enumeration; and the scale semantics of e4m3 tensors.
 */
class E4m3Test {

    // ------------------------------------------------------------------ PyTorch's reference, ported

    /*
     * Ported from pytorch/pytorch, c10/util/Float8_e4m3fn.h, commit 1725fe86ee350972a0cced911cbe2e80d3b9163c:
     * detail::fp8e4m3fn_to_fp32_value and detail::fp8e4m3fn_from_fp32_value, the same integer steps with
     * Java's int arithmetic (unsigned comparisons where the C code compares uint32_t).
     */
    static float torchToFp32(int input) {
        int w = (input & 0xFF) << 24;
        int sign = w & 0x80000000;
        int nonsign = w & 0x7FFFFFFF;
        int renormShift = nonsign != 0 ? Integer.numberOfLeadingZeros(nonsign) : 32;
        renormShift = renormShift > 4 ? renormShift - 4 : 0;
        int infNanMask = ((nonsign + 0x01000000) >> 8) & 0x7F800000;
        int zeroMask = (nonsign - 1) >> 31;
        int result = sign | ((((nonsign << renormShift >>> 4) + ((0x78 - renormShift) << 23)) | infNanMask) & ~zeroMask);
        return Float.intBitsToFloat(result);
    }

    static int torchFromFp32(float f) {
        int fp8Max = 1087 << 20;
        int denormMask = 141 << 23;
        int fBits = Float.floatToRawIntBits(f);
        int result;
        int sign = fBits & 0x80000000;
        fBits ^= sign;
        if (Integer.compareUnsigned(fBits, fp8Max) >= 0) {
            result = 0x7F;
        } else if (Integer.compareUnsigned(fBits, 121 << 23) < 0) {
            fBits = Float.floatToRawIntBits(Float.intBitsToFloat(fBits) + Float.intBitsToFloat(denormMask));
            result = (fBits - denormMask) & 0xFF;
        } else {
            int mantOdd = (fBits >>> 20) & 1;
            fBits += ((7 - 127) << 23) + 0x7FFFF;
            fBits += mantOdd;
            result = (fBits >>> 20) & 0xFF;
        }
        return result | (sign >>> 24);
    }

    // ------------------------------------------------------------------ conversions

    @Test
    void everyCodeWidensAsPyTorchWidensIt() {
        for (int c = 0; c < 256; c++) {
            float ours = DType.e4m3ToFloat((byte) c);
            float torch = torchToFp32(c);
            if ((c & 0x7F) == 0x7F) {
                assertTrue(Float.isNaN(ours) && Float.isNaN(torch), "code " + c);
            } else {
                assertEquals(Float.floatToRawIntBits(torch), Float.floatToRawIntBits(ours), "code " + c);
            }
        }
        assertEquals(448f, DType.e4m3ToFloat((byte) 0x7E));
        assertEquals(0x1p-9f, DType.e4m3ToFloat((byte) 0x01));
        assertEquals(0x1p-6f, DType.e4m3ToFloat((byte) 0x08));
        assertEquals(-0f, DType.e4m3ToFloat((byte) 0x80));
    }

    @Test
    void roundingMatchesPyTorchWhereverPyTorchGivesANumber() {
        // every 61st f32 bit pattern of [0, 464], both signs, and every code's value, the midpoints
        // between neighbours and one ulp either side of them
        int limit = Float.floatToRawIntBits(464f);
        for (int bits = 0; bits <= limit; bits += 61) {
            checkAgainstTorch(Float.intBitsToFloat(bits));
            checkAgainstTorch(-Float.intBitsToFloat(bits));
        }
        for (int c = 0; c < 0x7E; c++) {
            float lo = DType.e4m3ToFloat((byte) c);
            float hi = DType.e4m3ToFloat((byte) (c + 1));
            float mid = (lo + hi) / 2;
            for (float x : new float[] {lo, hi, mid, Math.nextUp(mid), Math.nextDown(mid)}) {
                checkAgainstTorch(x);
                checkAgainstTorch(-x);
            }
        }
        checkAgainstTorch(464f);
        checkAgainstTorch(Math.nextDown(464f));
    }

    private static void checkAgainstTorch(float x) {
        assertEquals(torchFromFp32(x), DType.floatToE4m3(x) & 0xFF, () -> "x = " + x + " (" + Float.toHexString(x) + ")");
    }

    @Test
    void beyondTheRangeSaturatesWherePyTorchGivesNaN() {
        for (float x : new float[] {Math.nextUp(464f), 480f, 1e6f, Float.MAX_VALUE, Float.POSITIVE_INFINITY}) {
            assertEquals(0x7F, torchFromFp32(x), "PyTorch: NaN for " + x);
            assertEquals(0x7E, DType.floatToE4m3(x) & 0xFF, "saturated to 448: " + x);
            assertEquals(0xFE, DType.floatToE4m3(-x) & 0xFF, "saturated to -448: " + x);
        }
        assertEquals(0x7F, DType.floatToE4m3(Float.NaN) & 0xFF);
        assertEquals(0xFF, DType.floatToE4m3(Float.intBitsToFloat(0xFFC00000)) & 0xFF, "the sign of a NaN is kept");
        assertTrue(Float.isNaN(DType.E4M3.round(Float.NaN)));
        assertEquals(448f, DType.E4M3.round(1e30f));
    }

    @Test
    void roundingIsTheNearestCodeTiesToEvenByEnumeration() {
        float[] values = new float[0x7F];
        for (int c = 0; c < values.length; c++) {
            values[c] = DType.e4m3ToFloat((byte) c);
        }
        SplittableRandom r = new SplittableRandom(3);
        for (int i = 0; i < 200_000; i++) {
            float x = (float) (Math.scalb(r.nextDouble(), r.nextInt(-14, 10)));
            int best = 0;
            for (int c = 1; c < values.length; c++) {
                double dc = Math.abs((double) values[c] - x);
                double db = Math.abs((double) values[best] - x);
                if (dc < db || dc == db && (c & 1) == 0) {
                    best = c;
                }
            }
            if (x > 448f) {
                best = 0x7E;
            }
            assertEquals(best, DType.floatToE4m3(x) & 0xFF, "x = " + x);
        }
    }

    @Test
    void parsesItsNames() {
        assertEquals(DType.E4M3, DType.parse("e4m3"));
        assertEquals(DType.E4M3, DType.parse("FP8"));
        assertEquals(DType.E4M3, DType.parse("float8_e4m3fn"));
        assertEquals("e4m3", DType.E4M3.toString());
        assertEquals(1, DType.E4M3.byteSize());
        assertEquals(DType.BF16, DType.E4M3.defaultOutput());
        assertEquals(DType.F16, DType.F16.defaultOutput());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DType.parse("e5m2"));
        assertEquals("dtype: unknown 'e5m2', expected one of f32, f16, bf16, e4m3", e.getMessage());
    }

    // ------------------------------------------------------------------ tensors with scales

    @Test
    void valuesAreCodeTimesTheHeadsScale() {
        byte[] codes = new byte[2 * 3 * 4 * 8];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = (byte) (i * 37 % 0x7E);
        }
        float[] scales = {0.5f, 3f, 0.01f};
        Tensor t = Tensor.ofE4m3(codes, scales, Layout.BSHD, 2, 3, 4, 8);
        float[] row = new float[8];
        for (int b = 0; b < 2; b++) {
            for (int h = 0; h < 3; h++) {
                for (int s = 0; s < 4; s++) {
                    t.readRow(b, h, s, row, 0);
                    for (int d = 0; d < 8; d++) {
                        float want = DType.e4m3ToFloat(codes[(int) t.index(b, h, s, d)]) * scales[h];
                        assertEquals(want, t.get(b, h, s, d));
                        assertEquals(want, row[d]);
                    }
                }
            }
        }
        Tensor one = t.withScales(2f);
        assertEquals(DType.e4m3ToFloat(codes[(int) t.index(1, 2, 3, 4)]) * 2f, one.get(1, 2, 3, 4));
        Tensor heads = t.narrowHeads(1, 2);
        assertArrayEquals(new float[] {3f, 0.01f}, heads.scales());
        assertEquals(t.get(0, 2, 1, 5), heads.get(0, 1, 1, 5));
        assertEquals(t.get(1, 1, 3, 0), t.narrowSeq(3, 1).narrowBatch(1, 1).get(0, 1, 0, 0));
        assertArrayEquals(new float[0], Tensor.allocate(DType.BF16, Layout.BHSD, 1, 1, 1, 8).scales());
    }

    @Test
    void writesStoreTheValueOverTheScale() {
        Tensor t = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 1, 8).withScales(0.25f, 4f);
        t.set(0, 0, 0, 0, 1.0f);     // 1 / 0.25 = 4: exact
        t.set(0, 1, 0, 0, 1.0f);     // 1 / 4 = 0.25: exact
        t.set(0, 1, 0, 1, 10_000f);  // 2500 saturates at 448, read back 448 · 4
        t.set(0, 0, 0, 2, 0.3f);     // 1.2 rounds to 1.25 (3 mantissa bits), read back 0.3125
        assertEquals(1f, t.get(0, 0, 0, 0));
        assertEquals(1f, t.get(0, 1, 0, 0));
        assertEquals(1792f, t.get(0, 1, 0, 1));
        assertEquals(0.3125f, t.get(0, 0, 0, 2));
        float[] row = {1, 2, 3, 4, 5, 6, 7, 8};
        t.writeRow(0, 1, 0, row, 0);
        for (int d = 0; d < 8; d++) {
            assertEquals(row[d], t.get(0, 1, 0, d), "small integers times 1/4 are exact codes");
        }
    }

    @Test
    void perHeadQuantisationMapsEachHeadsLargestMagnitudeTo448() {
        Tensor src = Tensor.allocate(DType.F32, Layout.BHSD, 1, 3, 5, 16);
        SplittableRandom r = new SplittableRandom(5);
        for (int h = 0; h < 3; h++) {
            for (int s = 0; s < 5; s++) {
                for (int d = 0; d < 16; d++) {
                    src.set(0, h, s, d, h == 2 ? 0f : (float) r.nextGaussian() * (h + 1) * 2f);
                }
            }
        }
        src.set(0, 1, 2, 3, -40f);
        Tensor q = Tensor.quantizeE4m3PerHead(src, Layout.BSHD);
        assertEquals(40f / 448f, q.scale(1));
        assertEquals(1f, q.scale(2), "a head of zeros keeps scale 1");
        assertEquals(-40f, q.get(0, 1, 2, 3), 1e-5f);
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 5; s++) {
                for (int d = 0; d < 16; d++) {
                    float x = src.get(0, h, s, d);
                    // e4m3 keeps 3 mantissa bits: within 1/16 relative, or a half step of 2^-9 · scale near 0
                    assertTrue(Math.abs(q.get(0, h, s, d) - x) <= Math.max(Math.abs(x) / 16, 0x1p-10f * q.scale(h)) * 1.0001,
                            "h " + h + " s " + s + " d " + d + ": " + x + " -> " + q.get(0, h, s, d));
                }
            }
        }
        src.set(0, 0, 0, 0, Float.NaN);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Tensor.quantizeE4m3PerHead(src, Layout.BHSD));
        assertEquals("source: non-finite value NaN at [b=0, h=0, s=0]; e4m3 scales need finite values", e.getMessage());
    }

    @Test
    void copiesRequantiseUnlessTheScalesAgree() {
        Tensor a = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 3, 8).withScales(1f, 2f);
        for (int s = 0; s < 3; s++) {
            for (int d = 0; d < 8; d++) {
                a.set(0, 0, s, d, s + d / 8f);
                a.set(0, 1, s, d, -2f * (s + d));
            }
        }
        Tensor same = Tensor.allocate(DType.E4M3, Layout.BSHD, 1, 2, 3, 8).withScales(1f, 2f);
        Tensor.copy(a, same);
        Tensor other = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 3, 8).withScales(0.5f);
        Tensor.copy(a, other);
        for (int h = 0; h < 2; h++) {
            for (int s = 0; s < 3; s++) {
                for (int d = 0; d < 8; d++) {
                    assertEquals(a.get(0, h, s, d), same.get(0, h, s, d));
                    assertEquals(DType.E4M3.round(a.get(0, h, s, d) / 0.5f) * 0.5f, other.get(0, h, s, d));
                }
            }
        }
        Tensor f32 = Tensor.allocate(DType.F32, Layout.BSHD, 1, 2, 3, 8);
        Tensor.convert(a, f32);
        assertArrayEquals(a.toFloatArray(), f32.toFloatArray(), "e4m3 values are exact in f32");
        Tensor back = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 3, 8).withScales(0.25f, 1f);
        Tensor.convert(f32, back);
        for (int d = 0; d < 8; d++) {
            assertEquals(DType.E4M3.round(f32.get(0, 1, 2, d) / 1f), back.get(0, 1, 2, d));
        }
        assertEquals("convert: src is Tensor[1, 2, 3, 8] f32 strides [48, 8, 16, 1] but dst is Tensor[1, 2, 2, 8] f32 strides"
                + " [32, 16, 8, 1] (shapes must agree)", assertThrows(IllegalArgumentException.class,
                        () -> Tensor.convert(f32, Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 2, 8))).getMessage());
        assertTrue(a.sameScales(same) && !a.sameScales(other) && !a.sameScales(f32));
        assertTrue(Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 1, 8).withScales(2f)
                .sameScales(Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 2, 1, 8).withScales(2f, 2f)));
        try (Arena arena = Arena.ofConfined()) {
            Tensor off = Tensor.allocate(arena, DType.E4M3, Layout.BHSD, 1, 2, 3, 8).withScales(1f, 2f);
            Tensor.copy(a, off);
            assertArrayEquals(a.toFloatArray(), off.toFloatArray());
        }
    }

    @Test
    void refusesBadScalesAndSixteenBitPatterns() {
        Tensor t = Tensor.allocate(DType.E4M3, Layout.BHSD, 1, 3, 1, 8);
        assertEquals("scales: expected 1 (per tensor) or 3 (per head), got 2",
                assertThrows(IllegalArgumentException.class, () -> t.withScales(1f, 2f)).getMessage());
        assertEquals("scales: scale 1 is 0.0; scales must be positive and finite",
                assertThrows(IllegalArgumentException.class, () -> t.withScales(1f, 0f, 1f)).getMessage());
        assertEquals("scales: scale 0 is Infinity; scales must be positive and finite",
                assertThrows(IllegalArgumentException.class, () -> t.withScales(Float.POSITIVE_INFINITY)).getMessage());
        assertEquals("scales: a bf16 tensor has no scales (only e4m3 tensors do)",
                assertThrows(IllegalArgumentException.class,
                        () -> Tensor.allocate(DType.BF16, Layout.BHSD, 1, 1, 1, 8).withScales(1f)).getMessage());
        assertEquals("dtype: 16-bit patterns cannot hold e4m3; use Tensor.ofE4m3(byte[], float[], ...)",
                assertThrows(IllegalArgumentException.class,
                        () -> Tensor.ofBits(new short[8], DType.E4M3, Layout.BHSD, 1, 1, 1, 8)).getMessage());
        assertEquals("codes: length 7 does not match the shape's 8 elements",
                assertThrows(IllegalArgumentException.class,
                        () -> Tensor.ofE4m3(new byte[7], new float[] {1f}, Layout.BHSD, 1, 1, 1, 8)).getMessage());
        assertThrows(IllegalStateException.class, () -> Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 1, 8).scale(0));
    }
}
