package dev.sparsa.patterns.support;

/**
 * An exponential with one fixed definition, written identically in Java and in the CUDA header
 * {@code sparsa_vs_estimate.cuh} ({@code vsExp}), so that an estimator computed on the host and on
 * the device agrees bit for bit ({@link Math#exp} and CUDA's {@code exp} may differ by an ulp).
 *
 * <p>{@code exp(x)} for a float {@code x}, in double: {@code n = rint(x · log2 e)} (round half even),
 * the Cody–Waite reduction {@code r = fma(−n, ln2hi, x)}, {@code r = fma(−n, ln2lo, r)} with fdlibm's
 * split of ln 2, then the Taylor polynomial of degree 11 of {@code e^r} by Horner's rule with one
 * {@code fma} per coefficient (the coefficients {@code 1/i!} as the hexadecimal literals below), times
 * {@code 2^n} (exact), rounded once to float. NaN gives NaN, {@code x < −104} gives {@code +0}, {@code
 * x > 89} gives {@code +∞}. Accuracy: within 1 ulp of {@link StrictMath#exp} rounded to float over the
 * whole float range (the reduced argument's error and the polynomial's truncation stay below
 * {@code 2^−40} relative).
 */
public final class CanonicalExp {
    private CanonicalExp() {
    }

    static final double LOG2E = 0x1.71547652b82fep0;
    static final double LN2_HI = 0x1.62e42feep-1;
    static final double LN2_LO = 0x1.a39ef35793c76p-33;
    /** {@code e^x} as defined above. */
    public static float exp(float x) {
        if (x != x) {
            return x;
        }
        if (x < -104f) {
            return 0f;
        }
        if (x > 89f) {
            return Float.POSITIVE_INFINITY;
        }
        double xd = x;
        double n = Math.rint(xd * LOG2E);
        double r = Math.fma(-n, LN2_HI, xd);
        r = Math.fma(-n, LN2_LO, r);
        // 1/i! for i = 11 down to 0
        double p = 0x1.ae64567f544e4p-26;
        p = Math.fma(p, r, 0x1.27e4fb7789f5cp-22);
        p = Math.fma(p, r, 0x1.71de3a556c734p-19);
        p = Math.fma(p, r, 0x1.a01a01a01a01ap-16);
        p = Math.fma(p, r, 0x1.a01a01a01a01ap-13);
        p = Math.fma(p, r, 0x1.6c16c16c16c17p-10);
        p = Math.fma(p, r, 0x1.1111111111111p-7);
        p = Math.fma(p, r, 0x1.5555555555555p-5);
        p = Math.fma(p, r, 0x1.5555555555555p-3);
        p = Math.fma(p, r, 0x1.0p-1);
        p = Math.fma(p, r, 0x1.0p0);
        p = Math.fma(p, r, 0x1.0p0);
        return (float) (p * Double.longBitsToDouble(((long) n + 1023) << 52));
    }
}
