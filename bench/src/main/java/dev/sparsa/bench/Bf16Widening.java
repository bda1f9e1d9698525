package dev.sparsa.bench;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.CompilerControl;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * What the Vector API reaches on bf16 inputs, against the same loops on f32 inputs, on one thread
 * (compare with {@link PeakFma#oneThread}). JDK 25's Vector API has no bf16 type and no bf16 dot
 * product, so every bf16 product is an f32 FMA after widening: the question is how much the
 * widening costs per FMA. One call scores one query row of D = 128 against a panel of 64 keys
 * (64 dot products of length 128, 2·64·128 flops, counted in {@code gflops} as GFLOP/s); the key
 * panel (32 KiB in f32, 16 KiB in bf16) stays in L1/L2 between calls.
 *
 * <ul>
 *   <li>{@code dot*}: each dot product loads (and widens) both rows from memory for every FMA, two
 *       accumulators per dot, two dots interleaved (four FMA chains);</li>
 *   <li>{@code panel*}: the query row is widened once per call (into an L1-resident f32 row), then
 *       the 64 keys are streamed past it eight at a time (eight FMA chains), each query vector
 *       loaded once per eight FMAs (only the key rows are widened in the loop);</li>
 *   <li>{@code *F32}: f32 rows, no widening;</li>
 *   <li>{@code *Bf16Convert}: widening as {@code PanamaTileMath.widenBf16} does it: a half-width
 *       {@code ShortVector} zero-extended to an {@code IntVector} ({@code ZERO_EXTEND_S2I}, a
 *       cross-lane conversion), shifted left by 16 and reinterpreted as floats;</li>
 *   <li>{@code *Bf16Split}: a full-width {@code ShortVector} reinterpreted as ints; the even
 *       elements are {@code ints << 16}, the odd ones {@code ints & 0xFFFF0000} (no cross-lane
 *       move, two in-lane integer operations per two FMAs). Both rows are split the same way, so
 *       the dot product is the same sum in another order (the pairing {@code vdpbf16ps} uses).</li>
 * </ul>
 *
 *
 * <p>The {@code block*} variants are the tile kernel's form instead (rows along the lanes, as in
 * {@code PanamaTileMath}'s Q·Kᵀ): one call scores {@code 3·L} query rows (a transposed f32 query
 * tile) against the 64 keys, four keys at a time into 12 accumulators; per column of D, three
 * vector loads of the query tile, four key entries broadcast, 12 FMAs (2·3L·64·128 flops per
 * call). {@code blockF32} broadcasts f32 key entries, {@code blockBf16} widens each bf16 key entry
 * in a general-purpose register ({@code bits << 16}) before the broadcast: one scalar widening per
 * three FMAs.
 *
 * <p>Every variant returns the sum of its 64 scores, so no work is dead. The widening is written
 * out in each loop and the benchmark methods are compiled on their own: with small helper methods
 * for it, C2 left some helpers out of line (boxing their vectors) and iterations ran 50–1000× slower.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Thread)
@Threads(1)
public class Bf16Widening {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    /** Half width: as many short lanes as f32 lanes (the convert path). */
    private static final VectorSpecies<Short> SH = VectorSpecies.of(short.class,
            VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 2)));
    /** Full width: twice as many short lanes as f32 lanes (the split path). */
    private static final VectorSpecies<Short> SF = VectorSpecies.of(short.class, F.vectorShape());
    private static final int D = 128;
    private static final int KEYS = 64;
    private static final int L = F.length();
    /** Query rows of the block variants: three vectors. */
    private static final int ROWS = 3 * L;
    private static final IntVector HIGH = IntVector.broadcast(I, 0xFFFF0000);

    private float[] qf;
    private float[] kf;
    private short[] qb;
    private short[] kb;
    /** The widened query row of the panel variants. */
    private float[] qw;
    /** The block variants' query tile, transposed: ROWS rows along the lanes for each of the D columns. */
    private float[] qT;
    /** The block variants' scores, ROWS per key. */
    private float[] scores;

    @Setup
    public void setup() {
        if (SH.length() != L || SF.length() != 2 * L || D % (2 * L) != 0) {
            throw new IllegalStateException("no matching short species at " + F.vectorBitSize() + " bits");
        }
        SplittableRandom r = new SplittableRandom(42);
        qf = new float[D];
        kf = new float[KEYS * D];
        qb = new short[D];
        kb = new short[KEYS * D];
        qw = new float[D];
        qT = new float[D * ROWS];
        scores = new float[KEYS * ROWS];
        for (int i = 0; i < qT.length; i++) {
            qT[i] = (float) (r.nextDouble() * 2 - 1);
        }
        for (int i = 0; i < D; i++) {
            qb[i] = (short) (Float.floatToRawIntBits((float) (r.nextDouble() * 2 - 1)) >>> 16);
            qf[i] = Float.intBitsToFloat(qb[i] << 16);
        }
        for (int i = 0; i < KEYS * D; i++) {
            kb[i] = (short) (Float.floatToRawIntBits((float) (r.nextDouble() * 2 - 1)) >>> 16);
            kf[i] = Float.intBitsToFloat(kb[i] << 16);
        }
        System.out.println("Bf16Widening: " + F.vectorBitSize() + "-bit vectors (" + L + " f32 lanes), D=" + D
                + ", " + KEYS + " keys per call");
    }

    private static double flopsPerCall() {
        return 2.0 * KEYS * D;
    }

    private static double blockFlopsPerCall() {
        return 2.0 * ROWS * KEYS * D;
    }

    // ------------------------------------------------------------------ both rows widened per FMA

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float dotF32(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        float s = 0;
        for (int k = 0; k < KEYS; k += 2) {
            int b0 = k * D;
            int b1 = b0 + D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector c0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector c1 = FloatVector.zero(F);
            for (int d = 0; d < D; d += 2 * L) {
                a0 = FloatVector.fromArray(F, kf, b0 + d).fma(FloatVector.fromArray(F, qf, d), a0);
                c0 = FloatVector.fromArray(F, kf, b0 + d + L).fma(FloatVector.fromArray(F, qf, d + L), c0);
                a1 = FloatVector.fromArray(F, kf, b1 + d).fma(FloatVector.fromArray(F, qf, d), a1);
                c1 = FloatVector.fromArray(F, kf, b1 + d + L).fma(FloatVector.fromArray(F, qf, d + L), c1);
            }
            s += a0.add(c0).reduceLanes(VectorOperators.ADD) + a1.add(c1).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float dotBf16Convert(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        float s = 0;
        for (int k = 0; k < KEYS; k += 2) {
            int b0 = k * D;
            int b1 = b0 + D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector c0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector c1 = FloatVector.zero(F);
            for (int d = 0; d < D; d += 2 * L) {
                a0 = ((IntVector) ShortVector.fromArray(SH, kb, b0 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(((IntVector) ShortVector.fromArray(SH, qb, d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a0);
                c0 = ((IntVector) ShortVector.fromArray(SH, kb, b0 + d + L).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(((IntVector) ShortVector.fromArray(SH, qb, d + L).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c0);
                a1 = ((IntVector) ShortVector.fromArray(SH, kb, b1 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(((IntVector) ShortVector.fromArray(SH, qb, d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a1);
                c1 = ((IntVector) ShortVector.fromArray(SH, kb, b1 + d + L).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(((IntVector) ShortVector.fromArray(SH, qb, d + L).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), c1);
            }
            s += a0.add(c0).reduceLanes(VectorOperators.ADD) + a1.add(c1).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float dotBf16Split(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        float s = 0;
        for (int k = 0; k < KEYS; k += 2) {
            int b0 = k * D;
            int b1 = b0 + D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector c0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector c1 = FloatVector.zero(F);
            for (int d = 0; d < D; d += 2 * L) {
                IntVector q0 = ShortVector.fromArray(SF, qb, d).reinterpretAsInts();
                IntVector p0 = ShortVector.fromArray(SF, kb, b0 + d).reinterpretAsInts();
                a0 = p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(q0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a0);
                c0 = p0.and(HIGH).reinterpretAsFloats().fma(q0.and(HIGH).reinterpretAsFloats(), c0);
                IntVector q1 = ShortVector.fromArray(SF, qb, d).reinterpretAsInts();
                IntVector p1 = ShortVector.fromArray(SF, kb, b1 + d).reinterpretAsInts();
                a1 = p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(q1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats(), a1);
                c1 = p1.and(HIGH).reinterpretAsFloats().fma(q1.and(HIGH).reinterpretAsFloats(), c1);
            }
            s += a0.add(c0).reduceLanes(VectorOperators.ADD) + a1.add(c1).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    // ------------------------------------------------------------------ query row widened once

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float panelF32(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        float[] q = qf;
        float s = 0;
        for (int k = 0; k < KEYS; k += 8) {
            int b0 = k * D;
            int b1 = b0 + 1 * D;
            int b2 = b0 + 2 * D;
            int b3 = b0 + 3 * D;
            int b4 = b0 + 4 * D;
            int b5 = b0 + 5 * D;
            int b6 = b0 + 6 * D;
            int b7 = b0 + 7 * D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int d = 0; d < D; d += L) {
                FloatVector qd = FloatVector.fromArray(F, q, d);
                a0 = FloatVector.fromArray(F, kf, b0 + d).fma(qd, a0);
                a1 = FloatVector.fromArray(F, kf, b1 + d).fma(qd, a1);
                a2 = FloatVector.fromArray(F, kf, b2 + d).fma(qd, a2);
                a3 = FloatVector.fromArray(F, kf, b3 + d).fma(qd, a3);
                a4 = FloatVector.fromArray(F, kf, b4 + d).fma(qd, a4);
                a5 = FloatVector.fromArray(F, kf, b5 + d).fma(qd, a5);
                a6 = FloatVector.fromArray(F, kf, b6 + d).fma(qd, a6);
                a7 = FloatVector.fromArray(F, kf, b7 + d).fma(qd, a7);
            }
            s += a0.add(a1).reduceLanes(VectorOperators.ADD) + a2.add(a3).reduceLanes(VectorOperators.ADD) + a4.add(a5).reduceLanes(VectorOperators.ADD) + a6.add(a7).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float panelBf16Convert(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        float[] q = qw;
        for (int d = 0; d < D; d += L) {
            ((IntVector) ShortVector.fromArray(SH, qb, d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(q, d);
        }
        float s = 0;
        for (int k = 0; k < KEYS; k += 8) {
            int b0 = k * D;
            int b1 = b0 + 1 * D;
            int b2 = b0 + 2 * D;
            int b3 = b0 + 3 * D;
            int b4 = b0 + 4 * D;
            int b5 = b0 + 5 * D;
            int b6 = b0 + 6 * D;
            int b7 = b0 + 7 * D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int d = 0; d < D; d += L) {
                FloatVector qd = FloatVector.fromArray(F, q, d);
                a0 = ((IntVector) ShortVector.fromArray(SH, kb, b0 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a0);
                a1 = ((IntVector) ShortVector.fromArray(SH, kb, b1 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a1);
                a2 = ((IntVector) ShortVector.fromArray(SH, kb, b2 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a2);
                a3 = ((IntVector) ShortVector.fromArray(SH, kb, b3 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a3);
                a4 = ((IntVector) ShortVector.fromArray(SH, kb, b4 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a4);
                a5 = ((IntVector) ShortVector.fromArray(SH, kb, b5 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a5);
                a6 = ((IntVector) ShortVector.fromArray(SH, kb, b6 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a6);
                a7 = ((IntVector) ShortVector.fromArray(SH, kb, b7 + d).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qd, a7);
            }
            s += a0.add(a1).reduceLanes(VectorOperators.ADD) + a2.add(a3).reduceLanes(VectorOperators.ADD) + a4.add(a5).reduceLanes(VectorOperators.ADD) + a6.add(a7).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float panelBf16Split(GigaFlops f) {
        f.gflops += flopsPerCall() * 1e-9;
        // the query row split as the keys are: per pair vector its even entries, then its odd ones
        float[] q = qw;
        for (int d = 0; d < D; d += 2 * L) {
            IntVector p = ShortVector.fromArray(SF, qb, d).reinterpretAsInts();
            p.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(q, d);
            p.and(HIGH).reinterpretAsFloats().intoArray(q, d + L);
        }
        float s = 0;
        for (int k = 0; k < KEYS; k += 8) {
            int b0 = k * D;
            int b1 = b0 + 1 * D;
            int b2 = b0 + 2 * D;
            int b3 = b0 + 3 * D;
            int b4 = b0 + 4 * D;
            int b5 = b0 + 5 * D;
            int b6 = b0 + 6 * D;
            int b7 = b0 + 7 * D;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector a4 = FloatVector.zero(F);
            FloatVector a5 = FloatVector.zero(F);
            FloatVector a6 = FloatVector.zero(F);
            FloatVector a7 = FloatVector.zero(F);
            for (int d = 0; d < D; d += 2 * L) {
                FloatVector qe = FloatVector.fromArray(F, q, d);
                FloatVector qo = FloatVector.fromArray(F, q, d + L);
                IntVector p0 = ShortVector.fromArray(SF, kb, b0 + d).reinterpretAsInts();
                a0 = p0.and(HIGH).reinterpretAsFloats().fma(qo, p0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a0));
                IntVector p1 = ShortVector.fromArray(SF, kb, b1 + d).reinterpretAsInts();
                a1 = p1.and(HIGH).reinterpretAsFloats().fma(qo, p1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a1));
                IntVector p2 = ShortVector.fromArray(SF, kb, b2 + d).reinterpretAsInts();
                a2 = p2.and(HIGH).reinterpretAsFloats().fma(qo, p2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a2));
                IntVector p3 = ShortVector.fromArray(SF, kb, b3 + d).reinterpretAsInts();
                a3 = p3.and(HIGH).reinterpretAsFloats().fma(qo, p3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a3));
                IntVector p4 = ShortVector.fromArray(SF, kb, b4 + d).reinterpretAsInts();
                a4 = p4.and(HIGH).reinterpretAsFloats().fma(qo, p4.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a4));
                IntVector p5 = ShortVector.fromArray(SF, kb, b5 + d).reinterpretAsInts();
                a5 = p5.and(HIGH).reinterpretAsFloats().fma(qo, p5.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a5));
                IntVector p6 = ShortVector.fromArray(SF, kb, b6 + d).reinterpretAsInts();
                a6 = p6.and(HIGH).reinterpretAsFloats().fma(qo, p6.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a6));
                IntVector p7 = ShortVector.fromArray(SF, kb, b7 + d).reinterpretAsInts();
                a7 = p7.and(HIGH).reinterpretAsFloats().fma(qo, p7.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(qe, a7));
            }
            s += a0.add(a1).reduceLanes(VectorOperators.ADD) + a2.add(a3).reduceLanes(VectorOperators.ADD) + a4.add(a5).reduceLanes(VectorOperators.ADD) + a6.add(a7).reduceLanes(VectorOperators.ADD);
        }
        return s;
    }

    // ------------------------------------------------------------------ register-blocked, rows along lanes

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float blockF32(GigaFlops f) {
        f.gflops += blockFlopsPerCall() * 1e-9;
        float[] qt = qT;
        for (int key = 0; key < KEYS; key += 4) {
            int b = key * D;
            FloatVector s00 = FloatVector.zero(F);
            FloatVector s01 = FloatVector.zero(F);
            FloatVector s02 = FloatVector.zero(F);
            FloatVector s10 = FloatVector.zero(F);
            FloatVector s11 = FloatVector.zero(F);
            FloatVector s12 = FloatVector.zero(F);
            FloatVector s20 = FloatVector.zero(F);
            FloatVector s21 = FloatVector.zero(F);
            FloatVector s22 = FloatVector.zero(F);
            FloatVector s30 = FloatVector.zero(F);
            FloatVector s31 = FloatVector.zero(F);
            FloatVector s32 = FloatVector.zero(F);
            for (int d = 0; d < D; d++) {
                FloatVector q0 = FloatVector.fromArray(F, qt, d * ROWS);
                FloatVector q1 = FloatVector.fromArray(F, qt, d * ROWS + L);
                FloatVector q2 = FloatVector.fromArray(F, qt, d * ROWS + 2 * L);
                FloatVector k0 = FloatVector.broadcast(F, kf[b + 0 * D + d]);
                s00 = q0.fma(k0, s00);
                s01 = q1.fma(k0, s01);
                s02 = q2.fma(k0, s02);
                FloatVector k1 = FloatVector.broadcast(F, kf[b + 1 * D + d]);
                s10 = q0.fma(k1, s10);
                s11 = q1.fma(k1, s11);
                s12 = q2.fma(k1, s12);
                FloatVector k2 = FloatVector.broadcast(F, kf[b + 2 * D + d]);
                s20 = q0.fma(k2, s20);
                s21 = q1.fma(k2, s21);
                s22 = q2.fma(k2, s22);
                FloatVector k3 = FloatVector.broadcast(F, kf[b + 3 * D + d]);
                s30 = q0.fma(k3, s30);
                s31 = q1.fma(k3, s31);
                s32 = q2.fma(k3, s32);
            }
            s00.intoArray(scores, (key + 0) * ROWS + 0 * L);
            s01.intoArray(scores, (key + 0) * ROWS + 1 * L);
            s02.intoArray(scores, (key + 0) * ROWS + 2 * L);
            s10.intoArray(scores, (key + 1) * ROWS + 0 * L);
            s11.intoArray(scores, (key + 1) * ROWS + 1 * L);
            s12.intoArray(scores, (key + 1) * ROWS + 2 * L);
            s20.intoArray(scores, (key + 2) * ROWS + 0 * L);
            s21.intoArray(scores, (key + 2) * ROWS + 1 * L);
            s22.intoArray(scores, (key + 2) * ROWS + 2 * L);
            s30.intoArray(scores, (key + 3) * ROWS + 0 * L);
            s31.intoArray(scores, (key + 3) * ROWS + 1 * L);
            s32.intoArray(scores, (key + 3) * ROWS + 2 * L);
        }
        return scores[0];
    }

    @Benchmark
    @CompilerControl(CompilerControl.Mode.DONT_INLINE)
    public float blockBf16(GigaFlops f) {
        f.gflops += blockFlopsPerCall() * 1e-9;
        float[] qt = qT;
        for (int key = 0; key < KEYS; key += 4) {
            int b = key * D;
            FloatVector s00 = FloatVector.zero(F);
            FloatVector s01 = FloatVector.zero(F);
            FloatVector s02 = FloatVector.zero(F);
            FloatVector s10 = FloatVector.zero(F);
            FloatVector s11 = FloatVector.zero(F);
            FloatVector s12 = FloatVector.zero(F);
            FloatVector s20 = FloatVector.zero(F);
            FloatVector s21 = FloatVector.zero(F);
            FloatVector s22 = FloatVector.zero(F);
            FloatVector s30 = FloatVector.zero(F);
            FloatVector s31 = FloatVector.zero(F);
            FloatVector s32 = FloatVector.zero(F);
            for (int d = 0; d < D; d++) {
                FloatVector q0 = FloatVector.fromArray(F, qt, d * ROWS);
                FloatVector q1 = FloatVector.fromArray(F, qt, d * ROWS + L);
                FloatVector q2 = FloatVector.fromArray(F, qt, d * ROWS + 2 * L);
                FloatVector k0 = FloatVector.broadcast(F, Float.intBitsToFloat(kb[b + 0 * D + d] << 16));
                s00 = q0.fma(k0, s00);
                s01 = q1.fma(k0, s01);
                s02 = q2.fma(k0, s02);
                FloatVector k1 = FloatVector.broadcast(F, Float.intBitsToFloat(kb[b + 1 * D + d] << 16));
                s10 = q0.fma(k1, s10);
                s11 = q1.fma(k1, s11);
                s12 = q2.fma(k1, s12);
                FloatVector k2 = FloatVector.broadcast(F, Float.intBitsToFloat(kb[b + 2 * D + d] << 16));
                s20 = q0.fma(k2, s20);
                s21 = q1.fma(k2, s21);
                s22 = q2.fma(k2, s22);
                FloatVector k3 = FloatVector.broadcast(F, Float.intBitsToFloat(kb[b + 3 * D + d] << 16));
                s30 = q0.fma(k3, s30);
                s31 = q1.fma(k3, s31);
                s32 = q2.fma(k3, s32);
            }
            s00.intoArray(scores, (key + 0) * ROWS + 0 * L);
            s01.intoArray(scores, (key + 0) * ROWS + 1 * L);
            s02.intoArray(scores, (key + 0) * ROWS + 2 * L);
            s10.intoArray(scores, (key + 1) * ROWS + 0 * L);
            s11.intoArray(scores, (key + 1) * ROWS + 1 * L);
            s12.intoArray(scores, (key + 1) * ROWS + 2 * L);
            s20.intoArray(scores, (key + 2) * ROWS + 0 * L);
            s21.intoArray(scores, (key + 2) * ROWS + 1 * L);
            s22.intoArray(scores, (key + 2) * ROWS + 2 * L);
            s30.intoArray(scores, (key + 3) * ROWS + 0 * L);
            s31.intoArray(scores, (key + 3) * ROWS + 1 * L);
            s32.intoArray(scores, (key + 3) * ROWS + 2 * L);
        }
        return scores[0];
    }
}
