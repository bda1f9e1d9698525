import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * How fast f16 values widen to f32 on the JVM, two ways: the plain loop over {@code Float.float16ToFloat}
 * that the CPU decode's widening runs (the JIT compiles it to vector conversions where the CPU has them),
 * and f16 bits turned into f32 bits in Vector API lanes (JDK 25's Vector API has no f16 lane conversion):
 * {@code ((h & 0x7FFF) << 13)} read as a float times 2^112 gives every finite value and the subnormals
 * exactly, infinities and NaNs get an all-ones exponent, then the sign. The second is the arithmetic an
 * f16 decode kernel would add to every load to read f16 rows in place, as the bf16 kernels read theirs
 * (a shift). A yardstick, not part of the library.
 *
 * <p>Run from the project root (JDK 25):
 * {@code java --add-modules jdk.incubator.vector -Dn=16384 -Drounds=8 bench/cpu/F16Widening.java}. {@code n}
 * is the values per pass (16384: source and destination stay in L1 and L2; 1048576: they do not); the
 * values are normal f16 numbers of both signs, and with {@code -Dsubnormals=true} every 16th is a
 * subnormal (whose f32 bits, before the multiply, are an f32 subnormal: x86 takes a slow path for it). It
 * first checks both ways on all 65536 bit patterns (every non-NaN pattern must give the same bits;
 * NaNs differ only in that {@code float16ToFloat} quiets a signalling NaN), then prints per round the
 * nanoseconds per value of each.
 */
public class F16Widening {
    static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    static final VectorSpecies<Integer> I = IntVector.SPECIES_512;

    static void plain(short[] src, float[] dst, int n) {
        for (int i = 0; i < n; i++) {
            dst[i] = Float.float16ToFloat(src[i]);
        }
    }

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
        plain(all, a, all.length);
        lanes(all, b, all.length);
        int differ = 0;
        int differNotNaN = 0;
        for (int i = 0; i < all.length; i++) {
            if (Float.floatToRawIntBits(a[i]) != Float.floatToRawIntBits(b[i])) {
                differ++;
                differNotNaN += Float.isNaN(a[i]) ? 0 : 1;
            }
        }
        System.out.printf("bit patterns that differ: %d (of them not NaN: %d)%n", differ, differNotNaN);
        if (differNotNaN > 0) {
            throw new AssertionError("the lane conversion is wrong for a non-NaN value");
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
            long plainNs = time(false, src, dst, n, passes);
            long lanesNs = time(true, src, dst, n, passes);
            if (r >= 0) {
                System.out.printf("round %d: float16ToFloat loop %.3f ns a value, in lanes %.3f ns a value%n", r,
                        plainNs / (double) (passes * n), lanesNs / (double) (passes * n));
            }
        }
    }

    /** Nanoseconds for {@code passes} passes of one way (a method of its own: main is too large to inline into). */
    static long time(boolean inLanes, short[] src, float[] dst, int n, long passes) {
        long t0 = System.nanoTime();
        for (long k = 0; k < passes; k++) {
            if (inLanes) {
                lanes(src, dst, n);
            } else {
                plain(src, dst, n);
            }
        }
        return System.nanoTime() - t0;
    }
}
