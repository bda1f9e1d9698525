package dev.sparsa.tensor;

/**
 * Element types Sparsa reads and writes. Accumulation is always f32 whatever the storage type.
 *
 * <p>f16 is IEEE 754 binary16; bf16 is the upper half of an f32 (8-bit exponent, 7-bit mantissa);
 * e4m3 is the 8-bit float of the OCP FP8 formats ("E4M3FN": 4-bit exponent of bias 7, 3-bit mantissa,
 * subnormals, no infinities, NaN {@code 0x7F}/{@code 0xFF}, largest finite ±448). Conversions to the
 * narrow types round to nearest, ties to even; NaN stays NaN. Conversion to e4m3 saturates: finite
 * values beyond ±448 and infinities become ±448 (as the GPU's {@code cvt.rn.satfinite} does), where
 * PyTorch's {@code .to(torch.float8_e4m3fn)} gives NaN.
 *
 * <p>An e4m3 tensor holds codes and a scale per head or per tensor ({@link Tensor#scale(int)}): its
 * values are {@code code × scale}, and every reader ({@link Tensor#get}, the kernels, the oracle)
 * sees those values.
 */
public enum DType {
    /** IEEE 754 binary32. */
    F32(4),
    /** IEEE 754 binary16. */
    F16(2),
    /** bfloat16: the high 16 bits of a binary32. */
    BF16(2),
    /** FP8 E4M3FN with a scale per head or per tensor; see the class comment. */
    E4M3(1);

    /** The largest finite e4m3 value. */
    public static final float E4M3_MAX = 448f;

    private final int byteSize;

    DType(int byteSize) {
        this.byteSize = byteSize;
    }

    /** Bytes one element occupies. */
    public int byteSize() {
        return byteSize;
    }

    /** The value {@code x} becomes once stored in this type and read back as f32. */
    public float round(float x) {
        return switch (this) {
            case F32 -> x;
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case BF16 -> bf16ToFloat(floatToBf16(x));
            case E4M3 -> e4m3ToFloat(floatToE4m3(x));
        };
    }

    /**
     * Widens an e4m3 code to f32 (exact), by a table of the 256 codes' values built thus: the code's 7
     * low bits placed at bit 20 of an f32 make an f32 whose value is the code's times 2^-120, normal or
     * subnormal alike, so one multiplication by 2^120 finishes it, and the sign bit is the code's;
     * {@code 0x7F} and {@code 0xFF} are the canonical NaN.
     */
    public static float e4m3ToFloat(byte code) {
        return E4M3_VALUES[code & 0xFF];
    }

    /**
     * The 256 codes' values, so that a scalar read is one load: with the arithmetic below (which
     * multiplies f32 subnormals for the small codes) in every read, the fp64 oracle over e4m3 inputs
     * took 5 × its bf16 time.
     */
    private static final float[] E4M3_VALUES = new float[256];

    static {
        for (int c = 0; c < 256; c++) {
            float v = Float.intBitsToFloat((c & 0x7F) << 20) * 0x1p120f;
            // both NaN codes read as the canonical NaN (0x7FC00000), as the vector widening gives them
            E4M3_VALUES[c] = (c & 0x7F) == 0x7F ? Float.NaN
                    : Float.intBitsToFloat(Float.floatToRawIntBits(v) | (c & 0x80) << 24);
        }
    }

    /**
     * Rounds an f32 to e4m3 (nearest, ties to even), saturating: magnitudes above 448, infinities
     * included, give ±448; NaN gives {@code 0x7F} with the input's sign bit.
     */
    public static byte floatToE4m3(float x) {
        int bits = Float.floatToRawIntBits(x);
        int sign = (bits >>> 24) & 0x80;
        int mag = bits & 0x7FFFFFFF;
        if (mag > 0x7F800000) {
            return (byte) (sign | 0x7F);
        }
        float a = Float.intBitsToFloat(mag);
        int code;
        if (a >= E4M3_MAX) {
            code = 0x7E;
        } else if (a < 0x1p-6f) {
            // subnormal range, steps of 2^-9: round a·2^9 to an integer, ties to even (Math.rint);
            // 8 (= 2^-6) is the smallest normal's code, which the same integer gives
            code = (int) Math.rint(a * 512f);
        } else {
            // normal: keep 3 mantissa bits of the f32, rounding the 20 dropped bits to nearest even;
            // a carry into the exponent is the right result (at most 448, as a < 448 here)
            int e = (mag >>> 23) - 127 + 7;
            int m = mag & 0x7FFFFF;
            int kept = m >>> 20;
            int rest = m & 0xFFFFF;
            if (rest > 0x80000 || (rest == 0x80000 && (kept & 1) == 1)) {
                kept++;
            }
            code = (e << 3) + kept;
        }
        return (byte) (sign | code);
    }

    /** Widens a bf16 bit pattern to f32 (exact). */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** Rounds an f32 to bf16 (nearest, ties to even), keeping NaN a quiet NaN. */
    public static short floatToBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7FFFFFFF) > 0x7F800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /**
     * Parses {@code f32}, {@code f16}, {@code bf16}, {@code e4m3} (case-insensitive; {@code fp8} and
     * {@code float8_e4m3fn} also name e4m3).
     */
    public static DType parse(String name) {
        for (DType t : values()) {
            if (t.name().equalsIgnoreCase(name)) {
                return t;
            }
        }
        if ("fp8".equalsIgnoreCase(name) || "float8_e4m3fn".equalsIgnoreCase(name)) {
            return E4M3;
        }
        throw new IllegalArgumentException("dtype: unknown '" + name + "', expected one of f32, f16, bf16, e4m3");
    }

    /**
     * The type an attention call on inputs of this type writes unless told otherwise: the type
     * itself, and bf16 for e4m3 (an 8-bit output would lose most of what the f32 accumulation kept).
     * Outputs may always be f32 instead.
     */
    public DType defaultOutput() {
        return this == E4M3 ? BF16 : this;
    }

    /** True for the 8-bit type, whose tensors carry scales. */
    public boolean isScaled() {
        return this == E4M3;
    }

    @Override
    public String toString() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
