package dev.sparsa.cpu;

/**
 * The one arithmetic of the soft-cap {@code cap·tanh(s/cap)} in every kernel flavour and every JIT
 * tier: additions, multiplications, divisions and fused multiply-adds only, which IEEE 754 defines
 * exactly, so the interpreter, C1, C2 and the Vector API give the same bits (the Vector API's {@code
 * TANH} and {@link Math#tanh} may not: they call platform routines in compiled code and differ from
 * their interpreted fallback in the last bit).
 *
 * <p>{@code tanh|y| = −E / (2 + E)} with {@code E = e^{−2|y|} − 1}, the sign of {@code y} put back.
 * {@code E} comes from the kernel's own exponential ({@code PanamaTileMath.softmax}): Cody-Waite
 * reduction {@code z = n·ln2 + f}, {@code e^f − 1 = f + f²·P(f)} with the same degree-5 polynomial,
 * and {@code E = 2^n·(e^f − 1) + (2^n − 1)}, which keeps full relative precision near 0. Within 3 ulp
 * of {@code tanh}; NaN stays NaN, ±∞ gives ±1. Public for the kernel flavours (the Vector API one
 * lives in another package); not meant for applications.
 */
public final class SoftCapArithmetic {
    public static final float LOG2E = 1.44269504088896341f;
    public static final float LN2_HI = 0.693359375f;
    public static final float LN2_LO = -2.12194440e-4f;
    /** 1.5·2^23: adding it rounds to an integer held in the low mantissa bits. */
    public static final float ROUNDER = 12582912f;
    public static final float EXP_MIN = -87.33654f;
    public static final int ROUNDER_BITS_MINUS_BIAS = Float.floatToRawIntBits(ROUNDER) - 127;
    public static final float P5 = 1.9875691500e-4f;
    public static final float P4 = 1.3981999507e-3f;
    public static final float P3 = 8.3334519073e-3f;
    public static final float P2 = 4.1665795894e-2f;
    public static final float P1 = 1.6666665459e-1f;
    public static final float P0 = 5.0000001201e-1f;

    private SoftCapArithmetic() {
    }

    /** {@code cap·tanh(s/cap)}, step by step as the vector code does it. */
    public static float softCap(float s, float cap) {
        float y = s / cap;
        float z = -2f * Math.abs(y);
        boolean tiny = z < EXP_MIN;
        float zc = tiny ? EXP_MIN : z;
        float t = Math.fma(zc, LOG2E, ROUNDER);
        float n = t - ROUNDER;
        float f = Math.fma(n, -LN2_HI, zc);
        f = Math.fma(n, -LN2_LO, f);
        float p = Math.fma(f, P5, P4);
        p = Math.fma(p, f, P3);
        p = Math.fma(p, f, P2);
        p = Math.fma(p, f, P1);
        p = Math.fma(p, f, P0);
        float em1 = Math.fma(p, f * f, f); // e^f - 1
        float twoN = Float.intBitsToFloat((Float.floatToRawIntBits(t) - ROUNDER_BITS_MINUS_BIAS) << 23);
        float e = Math.fma(em1, twoN, twoN - 1f); // e^z - 1
        if (tiny) {
            e = -1f;
        }
        float th = -e / (e + 2f);
        return (y < 0f ? -th : th) * cap;
    }
}
