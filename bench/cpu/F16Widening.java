import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * How fast f16 values widen to f32 on the JVM, three ways: the plain loop over {@code Float.float16ToFloat}
 * that the CPU decode's widening runs (the JIT compiles it to vector conversions where the CPU has them),
 * and f16 bits turned into f32 bits in Vector API lanes (JDK 25's Vector API has no f16 lane conversion),
 * either as {@code ((h & 0x7FFF) << 13)} read as a float times 2^112 ({@link #lanes}) or with no multiply
 * on a subnormal ({@link #lanesInt}). The lane forms are the arithmetic an f16 decode kernel would add to
 * every load to read f16 rows in place, as the bf16 kernels read theirs (a shift). A yardstick, not part
 * of the library.
 *
 * <p>Run from the project root (JDK 25):
 * {@code java --add-modules jdk.incubator.vector -Dn=16384 -Drounds=8 bench/cpu/F16Widening.java}. {@code n}
 * is the values per pass (16384: source and destination stay in L1 and L2; 1048576: they do not); the
 * values are normal f16 numbers of both signs, and with {@code -Dsubnormals=true} every 16th is a
 * subnormal (whose f32 bits, before {@link #lanes}' multiply, are an f32 subnormal: x86 takes a slow path
 * for it). It first checks the lane forms against the loop on all 65536 bit patterns (every non-NaN pattern
 * must give the same bits; NaNs differ only in that {@code float16ToFloat} quiets a signalling NaN), then
 * prints per round the nanoseconds per value of each.
 */
public class F16Widening {
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_512;

    static void plain(short[] src, float[] dst, int n) {
        for (int i = 0; i < n; i++) {
            dst[i] = Float.float16ToFloat(src[i]);
        }
    }

    /**
     * {@code ((h & 0x7FFF) << 13)} read as a float times 2^112: every finite value and the subnormals exactly;
     * infinities and NaNs get an all-ones exponent; then the sign.
     */
    static void lanes(short[] src, float[] dst, int n) {
        int i = 0;
        for (; i <= n - 16; i += 16) {
            IntVector h = (IntVector) ShortVector.fromArray(S, src, i).convertShape(VectorOperators.S2I, I, 0);
            IntVector magnitude = h.and(0x7FFF);
            IntVector bits = magnitude.lanewise(VectorOperators.LSHL, 13).reinterpretAsFloats().mul(0x1p112f)
                    .reinterpretAsInts();
            VectorMask<Integer> infOrNaN = magnitude.compare(VectorOperators.GE, 0x7C00);
            bits = bits.blend(bits.or(0x7F800000), infOrNaN).or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16));
            bits.reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < n; i++) {
            dst[i] = Float.float16ToFloat(src[i]);
        }
    }

    /**
     * The same conversion without a multiply on a subnormal: normal numbers by adding the exponent bias
     * difference to the shifted bits, subnormals as their integer mantissa converted to float times
     * 2^-24 (a normal f32 times a power of two), infinities and NaNs with an all-ones exponent.
     */
    static void lanesInt(short[] src, float[] dst, int n) {
        int i = 0;
        for (; i <= n - 16; i += 16) {
            IntVector h = (IntVector) ShortVector.fromArray(S, src, i).convertShape(VectorOperators.S2I, I, 0);
            IntVector magnitude = h.and(0x7FFF);
            IntVector shifted = magnitude.lanewise(VectorOperators.LSHL, 13);
            IntVector bits = shifted.add(0x38000000);
            IntVector small = ((FloatVector) magnitude.convertShape(VectorOperators.I2F, FloatVector.SPECIES_512, 0))
                    .mul(0x1p-24f).reinterpretAsInts();
            bits = bits.blend(small, magnitude.compare(VectorOperators.LT, 0x0400));
            bits = bits.blend(shifted.or(0x7F800000), magnitude.compare(VectorOperators.GE, 0x7C00));
            bits.or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats().intoArray(dst, i);
        }
        for (; i < n; i++) {
            dst[i] = Float.float16ToFloat(src[i]);
        }
    }

    public static void main(String[] args) {
        int n = Integer.getInteger("n", 16384);
        int rounds = Integer.getInteger("rounds", 8);
        if (n < 16 || n % 16 != 0 || rounds < 1) {
            throw new IllegalArgumentException("-Dn: a multiple of 16, at least 16; -Drounds: at least 1");
        }
        short[] all = new short[65536];
        for (int i = 0; i < all.length; i++) {
            all[i] = (short) i;
        }
        float[] a = new float[all.length];
        float[] b = new float[all.length];
        float[] c = new float[all.length];
        plain(all, a, all.length);
        lanes(all, b, all.length);
        lanesInt(all, c, all.length);
        for (float[] other : new float[][] {b, c}) {
            int differ = 0;
            int differNotNaN = 0;
            for (int i = 0; i < all.length; i++) {
                if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(other[i])) {
                    differ++;
                    differNotNaN += Float.isNaN(a[i]) ? 0 : 1;
                }
            }
            System.out.printf("%s: bit patterns that differ from the loop's: %d (of them not NaN: %d)%n",
                    other == b ? "in lanes" : "in lanes, no multiply on subnormals", differ, differNotNaN);
            if (differNotNaN > 0) {
                throw new AssertionError("a lane conversion is wrong for a non-NaN value");
            }
        }
        // normal f16 values of both signs; with -Dsubnormals=true every 16th is a subnormal
        boolean subnormals = Boolean.getBoolean("subnormals");
        short[] src = new short[n];
        for (int i = 0; i < n; i++) {
            int exponent = subnormals && i % 16 == 0 ? 0 : 1 + i * 7 % 30;
            src[i] = (short) ((i & 1) << 15 | exponent << 10 | (i * 7919 & 0x3FF) | 1);
        }
        float[] dst = new float[n];
        long passes = Math.max(1, (64L << 20) / n);
        for (int r = -1; r < rounds; r++) {
            long plainNs = time(0, src, dst, n, passes);
            long lanesNs = time(1, src, dst, n, passes);
            long intNs = time(2, src, dst, n, passes);
            if (r >= 0) {
                double v = passes * (double) n;
                System.out.printf("round %d: ns a value: float16ToFloat loop %.3f, in lanes %.3f, in lanes with no"
                        + " multiply on subnormals %.3f%n", r, plainNs / v, lanesNs / v, intNs / v);
            }
        }
    }

    /** Nanoseconds for {@code passes} passes of one way (a method of its own: main is too large to inline into). */
    static long time(int way, short[] src, float[] dst, int n, long passes) {
        long t0 = System.nanoTime();
        for (long k = 0; k < passes; k++) {
            switch (way) {
                case 0 -> plain(src, dst, n);
                case 1 -> lanes(src, dst, n);
                default -> lanesInt(src, dst, n);
            }
        }
        return System.nanoTime() - t0;
    }
}
