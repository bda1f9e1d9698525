package dev.sparsa.tensor;

/**
 * Element types Sparsa reads and writes. Accumulation is always f32 whatever the storage type.
 *
 * <p>f16 is IEEE 754 binary16; bf16 is the upper half of an f32 (8-bit exponent, 7-bit mantissa).
 * Conversions to the narrow types round to nearest, ties to even; NaN stays NaN.
 */
public enum DType {
    /** IEEE 754 binary32. */
    F32(4),
    /** IEEE 754 binary16. */
    F16(2),
    /** bfloat16: the high 16 bits of a binary32. */
    BF16(2);

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
        };
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

    /** Parses {@code f32}, {@code f16}, {@code bf16} (case-insensitive). */
    public static DType parse(String name) {
        for (DType t : values()) {
            if (t.name().equalsIgnoreCase(name)) {
                return t;
            }
        }
        throw new IllegalArgumentException("dtype: unknown '" + name + "', expected one of f32, f16, bf16");
    }

    @Override
    public String toString() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}
