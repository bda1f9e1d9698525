package dev.sparsa.cpu.panama;

import dev.sparsa.cpu.KernelFlavour;
import dev.sparsa.cpu.SoftCapArithmetic;
import dev.sparsa.cpu.TileMath;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The Vector API tile arithmetic. Loaded only by name through the CPU backend's provider (after
 * {@code dev.sparsa.internal.VectorModule} found {@code jdk.incubator.vector}), so that no class
 * outside this package touches the Vector API; its constructor declines (throws {@link
 * UnsupportedOperationException}) when the vectors would be too narrow to pay.
 *
 * <p>The species is a static final, chosen once per JVM: the platform's preferred width, or the
 * width forced by {@code -Dsparsa.cpu.vectorBits=128|256|512} (tests use it to cover the 256- and
 * 512-bit code on one machine). Every loop uses that one species; no widths are mixed.
 *
 * <p>Micro-kernels: Q·Kᵀ keeps rows along lanes ({@code qT} is transposed once per tile), so each
 * step broadcasts one key element and fuses it into 4 keys × 2 row-vectors = 8 independent
 * accumulators; P·V broadcasts one probability per row and fuses it into 4 rows × 2 column-vectors.
 * Tails (an odd row-vector, fewer than 4 keys or rows, an odd column-vector) run in smaller
 * kernels of the same arithmetic, so a row's result never depends on which kernel handled it.
 */
public final class PanamaTileMath implements TileMath {
    /** The species every loop uses. */
    public static final VectorSpecies<Float> F = floatSpecies();
    /** Its f32 lane count. */
    public static final int L = F.length();
    /** Q·Kᵀ in blocks of four row-vectors where the vectors are 512 bits wide (32 vector registers). */
    private static final boolean WIDE_BLOCKS = L >= 16;
    private static final VectorSpecies<Integer> I = F.withLanes(int.class);
    private static final VectorSpecies<Short> S = VectorSpecies.of(short.class,
            VectorShape.forBitSize(Math.max(64, F.vectorBitSize() / 2)));
    /** One byte per f32 lane (e4m3 codes), or null where that is narrower than the smallest vector. */
    private static final VectorSpecies<Byte> B = L * 8 >= 64 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(L * 8))
            : null;

    /**
     * The arithmetic at the chosen width.
     *
     * @throws UnsupportedOperationException when the vectors are too narrow to pay or the forced
     *     width is not one of 128, 256, 512
     */
    public PanamaTileMath() {
        if (L < 4) {
            throw new UnsupportedOperationException("the preferred f32 vector has only " + L
                    + " lane(s); the scalar kernel is as fast");
        }
        if (S.length() != L) {
            throw new UnsupportedOperationException("no " + L + "-lane short vector for bf16 widening at "
                    + F.vectorBitSize() + " bits");
        }
    }

    private static VectorSpecies<Float> floatSpecies() {
        String bits = System.getProperty(TileMath.VECTOR_BITS_PROPERTY);
        if (bits == null || bits.isBlank()) {
            return FloatVector.SPECIES_PREFERRED;
        }
        return switch (bits.trim()) {
            case "128" -> FloatVector.SPECIES_128;
            case "256" -> FloatVector.SPECIES_256;
            case "512" -> FloatVector.SPECIES_512;
            default -> throw new UnsupportedOperationException("-D" + TileMath.VECTOR_BITS_PROPERTY + "="
                    + bits + " is not one of 128, 256, 512");
        };
    }

    @Override
    public KernelFlavour flavour() {
        return KernelFlavour.VECTOR;
    }

    @Override
    public String description() {
        return "vector " + F.vectorBitSize() + "-bit (" + L + " f32 lanes, jdk.incubator.vector)";
    }

    @Override
    public int lanes() {
        return L;
    }

    // ---------------------------------------------------------------- Q·Kᵀ

    @Override
    public void scores(float[] qT, int ldQ, int rowsPad, float[] k, int[] kOff, int dim, int n, float[] s, int ldS) {
        int r = 0;
        // 512-bit vectors (32 registers): 6 keys × 4 row-vectors, 24 accumulators, 10 loads per 24 FMAs
        if (WIDE_BLOCKS) {
            for (; r + 4 * L <= rowsPad; r += 4 * L) {
                int j = 0;
                for (; j + 6 <= n; j += 6) {
                    scores6x4(qT, ldQ, r, k, kOff, dim, j, s, ldS);
                }
                for (; j + 4 <= n; j += 4) {
                    scores4x2(qT, ldQ, r, k, kOff, dim, j, s, ldS);
                    scores4x2(qT, ldQ, r + 2 * L, k, kOff, dim, j, s, ldS);
                }
                for (; j < n; j++) {
                    scores1x2(qT, ldQ, r, k, kOff, dim, j, s, ldS);
                    scores1x2(qT, ldQ, r + 2 * L, k, kOff, dim, j, s, ldS);
                }
            }
        }
        for (; r + 2 * L <= rowsPad; r += 2 * L) {
            int j = 0;
            for (; j + 6 <= n; j += 6) {
                scores6x2(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
            for (; j + 4 <= n; j += 4) {
                scores4x2(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
            for (; j < n; j++) {
                scores1x2(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
        }
        for (; r < rowsPad; r += L) {
            int j = 0;
            // one row-vector: eight keys' chains in flight where there are 32 registers
            for (; WIDE_BLOCKS && j + 8 <= n; j += 8) {
                scores8x1(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
            for (; j + 4 <= n; j += 4) {
                scores4x1(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
            for (; j < n; j++) {
                scores1x1(qT, ldQ, r, k, kOff, dim, j, s, ldS);
            }
        }
    }

    private static void scores4x2(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F);
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector q0 = FloatVector.fromArray(F, qT, qi);
            FloatVector q1 = FloatVector.fromArray(F, qT, qi + L);
            FloatVector b = FloatVector.broadcast(F, k[k0 + d]);
            a00 = q0.fma(b, a00);
            a01 = q1.fma(b, a01);
            b = FloatVector.broadcast(F, k[k1 + d]);
            a10 = q0.fma(b, a10);
            a11 = q1.fma(b, a11);
            b = FloatVector.broadcast(F, k[k2 + d]);
            a20 = q0.fma(b, a20);
            a21 = q1.fma(b, a21);
            b = FloatVector.broadcast(F, k[k3 + d]);
            a30 = q0.fma(b, a30);
            a31 = q1.fma(b, a31);
        }
        int o = j * ldS + r;
        a00.intoArray(s, o);
        a01.intoArray(s, o + L);
        o += ldS;
        a10.intoArray(s, o);
        a11.intoArray(s, o + L);
        o += ldS;
        a20.intoArray(s, o);
        a21.intoArray(s, o + L);
        o += ldS;
        a30.intoArray(s, o);
        a31.intoArray(s, o + L);
    }

    private static void scores6x2(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F);
        FloatVector a40 = FloatVector.zero(F), a41 = FloatVector.zero(F);
        FloatVector a50 = FloatVector.zero(F), a51 = FloatVector.zero(F);
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        int k4 = kOff[j + 4];
        int k5 = kOff[j + 5];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector q0 = FloatVector.fromArray(F, qT, qi);
            FloatVector q1 = FloatVector.fromArray(F, qT, qi + L);
            FloatVector b = FloatVector.broadcast(F, k[k0 + d]);
            a00 = q0.fma(b, a00);
            a01 = q1.fma(b, a01);
            b = FloatVector.broadcast(F, k[k1 + d]);
            a10 = q0.fma(b, a10);
            a11 = q1.fma(b, a11);
            b = FloatVector.broadcast(F, k[k2 + d]);
            a20 = q0.fma(b, a20);
            a21 = q1.fma(b, a21);
            b = FloatVector.broadcast(F, k[k3 + d]);
            a30 = q0.fma(b, a30);
            a31 = q1.fma(b, a31);
            b = FloatVector.broadcast(F, k[k4 + d]);
            a40 = q0.fma(b, a40);
            a41 = q1.fma(b, a41);
            b = FloatVector.broadcast(F, k[k5 + d]);
            a50 = q0.fma(b, a50);
            a51 = q1.fma(b, a51);
        }
        int o = j * ldS + r;
        a00.intoArray(s, o);
        a01.intoArray(s, o + L);
        o += ldS;
        a10.intoArray(s, o);
        a11.intoArray(s, o + L);
        o += ldS;
        a20.intoArray(s, o);
        a21.intoArray(s, o + L);
        o += ldS;
        a30.intoArray(s, o);
        a31.intoArray(s, o + L);
        o += ldS;
        a40.intoArray(s, o);
        a41.intoArray(s, o + L);
        o += ldS;
        a50.intoArray(s, o);
        a51.intoArray(s, o + L);
    }

    private static void scores6x4(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a00 = FloatVector.zero(F), a01 = FloatVector.zero(F);
        FloatVector a02 = FloatVector.zero(F), a03 = FloatVector.zero(F);
        FloatVector a10 = FloatVector.zero(F), a11 = FloatVector.zero(F);
        FloatVector a12 = FloatVector.zero(F), a13 = FloatVector.zero(F);
        FloatVector a20 = FloatVector.zero(F), a21 = FloatVector.zero(F);
        FloatVector a22 = FloatVector.zero(F), a23 = FloatVector.zero(F);
        FloatVector a30 = FloatVector.zero(F), a31 = FloatVector.zero(F);
        FloatVector a32 = FloatVector.zero(F), a33 = FloatVector.zero(F);
        FloatVector a40 = FloatVector.zero(F), a41 = FloatVector.zero(F);
        FloatVector a42 = FloatVector.zero(F), a43 = FloatVector.zero(F);
        FloatVector a50 = FloatVector.zero(F), a51 = FloatVector.zero(F);
        FloatVector a52 = FloatVector.zero(F), a53 = FloatVector.zero(F);
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        int k4 = kOff[j + 4];
        int k5 = kOff[j + 5];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector q0 = FloatVector.fromArray(F, qT, qi);
            FloatVector q1 = FloatVector.fromArray(F, qT, qi + L);
            FloatVector q2 = FloatVector.fromArray(F, qT, qi + 2 * L);
            FloatVector q3 = FloatVector.fromArray(F, qT, qi + 3 * L);
            FloatVector b = FloatVector.broadcast(F, k[k0 + d]);
            a00 = q0.fma(b, a00);
            a01 = q1.fma(b, a01);
            a02 = q2.fma(b, a02);
            a03 = q3.fma(b, a03);
            b = FloatVector.broadcast(F, k[k1 + d]);
            a10 = q0.fma(b, a10);
            a11 = q1.fma(b, a11);
            a12 = q2.fma(b, a12);
            a13 = q3.fma(b, a13);
            b = FloatVector.broadcast(F, k[k2 + d]);
            a20 = q0.fma(b, a20);
            a21 = q1.fma(b, a21);
            a22 = q2.fma(b, a22);
            a23 = q3.fma(b, a23);
            b = FloatVector.broadcast(F, k[k3 + d]);
            a30 = q0.fma(b, a30);
            a31 = q1.fma(b, a31);
            a32 = q2.fma(b, a32);
            a33 = q3.fma(b, a33);
            b = FloatVector.broadcast(F, k[k4 + d]);
            a40 = q0.fma(b, a40);
            a41 = q1.fma(b, a41);
            a42 = q2.fma(b, a42);
            a43 = q3.fma(b, a43);
            b = FloatVector.broadcast(F, k[k5 + d]);
            a50 = q0.fma(b, a50);
            a51 = q1.fma(b, a51);
            a52 = q2.fma(b, a52);
            a53 = q3.fma(b, a53);
        }
        int o = j * ldS + r;
        a00.intoArray(s, o);
        a01.intoArray(s, o + L);
        a02.intoArray(s, o + 2 * L);
        a03.intoArray(s, o + 3 * L);
        o += ldS;
        a10.intoArray(s, o);
        a11.intoArray(s, o + L);
        a12.intoArray(s, o + 2 * L);
        a13.intoArray(s, o + 3 * L);
        o += ldS;
        a20.intoArray(s, o);
        a21.intoArray(s, o + L);
        a22.intoArray(s, o + 2 * L);
        a23.intoArray(s, o + 3 * L);
        o += ldS;
        a30.intoArray(s, o);
        a31.intoArray(s, o + L);
        a32.intoArray(s, o + 2 * L);
        a33.intoArray(s, o + 3 * L);
        o += ldS;
        a40.intoArray(s, o);
        a41.intoArray(s, o + L);
        a42.intoArray(s, o + 2 * L);
        a43.intoArray(s, o + 3 * L);
        o += ldS;
        a50.intoArray(s, o);
        a51.intoArray(s, o + L);
        a52.intoArray(s, o + 2 * L);
        a53.intoArray(s, o + 3 * L);
    }

    private static void scores1x2(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        int k0 = kOff[j];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector b = FloatVector.broadcast(F, k[k0 + d]);
            a0 = FloatVector.fromArray(F, qT, qi).fma(b, a0);
            a1 = FloatVector.fromArray(F, qT, qi + L).fma(b, a1);
        }
        int o = j * ldS + r;
        a0.intoArray(s, o);
        a1.intoArray(s, o + L);
    }

    private static void scores8x1(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        FloatVector a4 = FloatVector.zero(F), a5 = FloatVector.zero(F);
        FloatVector a6 = FloatVector.zero(F), a7 = FloatVector.zero(F);
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        int k4 = kOff[j + 4];
        int k5 = kOff[j + 5];
        int k6 = kOff[j + 6];
        int k7 = kOff[j + 7];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector q = FloatVector.fromArray(F, qT, qi);
            a0 = q.fma(FloatVector.broadcast(F, k[k0 + d]), a0);
            a1 = q.fma(FloatVector.broadcast(F, k[k1 + d]), a1);
            a2 = q.fma(FloatVector.broadcast(F, k[k2 + d]), a2);
            a3 = q.fma(FloatVector.broadcast(F, k[k3 + d]), a3);
            a4 = q.fma(FloatVector.broadcast(F, k[k4 + d]), a4);
            a5 = q.fma(FloatVector.broadcast(F, k[k5 + d]), a5);
            a6 = q.fma(FloatVector.broadcast(F, k[k6 + d]), a6);
            a7 = q.fma(FloatVector.broadcast(F, k[k7 + d]), a7);
        }
        int o = j * ldS + r;
        a0.intoArray(s, o);
        a1.intoArray(s, o + ldS);
        a2.intoArray(s, o + 2 * ldS);
        a3.intoArray(s, o + 3 * ldS);
        a4.intoArray(s, o + 4 * ldS);
        a5.intoArray(s, o + 5 * ldS);
        a6.intoArray(s, o + 6 * ldS);
        a7.intoArray(s, o + 7 * ldS);
    }

    private static void scores4x1(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            FloatVector q = FloatVector.fromArray(F, qT, qi);
            a0 = q.fma(FloatVector.broadcast(F, k[k0 + d]), a0);
            a1 = q.fma(FloatVector.broadcast(F, k[k1 + d]), a1);
            a2 = q.fma(FloatVector.broadcast(F, k[k2 + d]), a2);
            a3 = q.fma(FloatVector.broadcast(F, k[k3 + d]), a3);
        }
        int o = j * ldS + r;
        a0.intoArray(s, o);
        a1.intoArray(s, o + ldS);
        a2.intoArray(s, o + 2 * ldS);
        a3.intoArray(s, o + 3 * ldS);
    }

    private static void scores1x1(float[] qT, int ldQ, int r, float[] k, int[] kOff, int dim, int j, float[] s,
                                  int ldS) {
        FloatVector a = FloatVector.zero(F);
        int k0 = kOff[j];
        for (int d = 0, qi = r; d < dim; d++, qi += ldQ) {
            a = FloatVector.fromArray(F, qT, qi).fma(FloatVector.broadcast(F, k[k0 + d]), a);
        }
        a.intoArray(s, j * ldS + r);
    }

    // ---------------------------------------------------------------- Q·Kᵀ, narrow form

    /**
     * Dot products along the head dimension: four keys at a time per row, each a chain of fused
     * multiply-adds over the full vectors of the dimension then a masked tail, reduced across lanes.
     */
    @Override
    public void scoresByRow(float[] q, int rows, float[] k, int[] kOff, int dim, int n, float[] s, int ldR) {
        int full = dim - dim % L;
        VectorMask<Float> tail = F.indexInRange(full, dim);
        for (int r = 0; r < rows; r++) {
            int qo = r * dim;
            int o = r * ldR;
            int j = 0;
            // eight keys at a time (eight independent fma chains; four leave it waiting on the fma
            // latency) where the dimension is whole vectors; a method of its own so that C1 compiles it
            for (; full == dim && j + 8 <= n; j += 8) {
                dots8(q, qo, k, kOff, j, dim, s, o + j);
            }
            for (; j + 4 <= n; j += 4) {
                int k0 = kOff[j];
                int k1 = kOff[j + 1];
                int k2 = kOff[j + 2];
                int k3 = kOff[j + 3];
                FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
                FloatVector a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
                for (int d = 0; d < full; d += L) {
                    FloatVector x = FloatVector.fromArray(F, q, qo + d);
                    a0 = x.fma(FloatVector.fromArray(F, k, k0 + d), a0);
                    a1 = x.fma(FloatVector.fromArray(F, k, k1 + d), a1);
                    a2 = x.fma(FloatVector.fromArray(F, k, k2 + d), a2);
                    a3 = x.fma(FloatVector.fromArray(F, k, k3 + d), a3);
                }
                if (full < dim) {
                    FloatVector x = FloatVector.fromArray(F, q, qo + full, tail);
                    a0 = x.fma(FloatVector.fromArray(F, k, k0 + full, tail), a0);
                    a1 = x.fma(FloatVector.fromArray(F, k, k1 + full, tail), a1);
                    a2 = x.fma(FloatVector.fromArray(F, k, k2 + full, tail), a2);
                    a3 = x.fma(FloatVector.fromArray(F, k, k3 + full, tail), a3);
                }
                s[o + j] = sumLanes(a0);
                s[o + j + 1] = sumLanes(a1);
                s[o + j + 2] = sumLanes(a2);
                s[o + j + 3] = sumLanes(a3);
            }
            for (; j < n; j++) {
                int k0 = kOff[j];
                FloatVector a0 = FloatVector.zero(F);
                for (int d = 0; d < full; d += L) {
                    a0 = FloatVector.fromArray(F, q, qo + d).fma(FloatVector.fromArray(F, k, k0 + d), a0);
                }
                if (full < dim) {
                    a0 = FloatVector.fromArray(F, q, qo + full, tail).fma(FloatVector.fromArray(F, k, k0 + full, tail), a0);
                }
                s[o + j] = sumLanes(a0);
            }
        }
    }

    /** Eight keys' dot products with one row ({@code dim} a multiple of the lanes), each reduced by {@link #sumLanes}. */
    private static void dots8(float[] q, int qo, float[] k, int[] kOff, int j, int dim, float[] s, int so) {
        int k0 = kOff[j];
        int k1 = kOff[j + 1];
        int k2 = kOff[j + 2];
        int k3 = kOff[j + 3];
        int k4 = kOff[j + 4];
        int k5 = kOff[j + 5];
        int k6 = kOff[j + 6];
        int k7 = kOff[j + 7];
        FloatVector a0 = FloatVector.zero(F), a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F), a3 = FloatVector.zero(F);
        FloatVector a4 = FloatVector.zero(F), a5 = FloatVector.zero(F);
        FloatVector a6 = FloatVector.zero(F), a7 = FloatVector.zero(F);
        for (int d = 0; d < dim; d += L) {
            FloatVector x = FloatVector.fromArray(F, q, qo + d);
            a0 = x.fma(FloatVector.fromArray(F, k, k0 + d), a0);
            a1 = x.fma(FloatVector.fromArray(F, k, k1 + d), a1);
            a2 = x.fma(FloatVector.fromArray(F, k, k2 + d), a2);
            a3 = x.fma(FloatVector.fromArray(F, k, k3 + d), a3);
            a4 = x.fma(FloatVector.fromArray(F, k, k4 + d), a4);
            a5 = x.fma(FloatVector.fromArray(F, k, k5 + d), a5);
            a6 = x.fma(FloatVector.fromArray(F, k, k6 + d), a6);
            a7 = x.fma(FloatVector.fromArray(F, k, k7 + d), a7);
        }
        s[so] = sumLanes(a0);
        s[so + 1] = sumLanes(a1);
        s[so + 2] = sumLanes(a2);
        s[so + 3] = sumLanes(a3);
        s[so + 4] = sumLanes(a4);
        s[so + 5] = sumLanes(a5);
        s[so + 6] = sumLanes(a6);
        s[so + 7] = sumLanes(a7);
    }

    /**
     * The sum of the lanes in one fixed order of lanewise additions (the upper half of the vector
     * added to the lower, down to four lanes, then {@code (x0 + x2) + (x1 + x3)}), so the interpreter
     * and compiled code give the same bits. {@code reduceLanes(ADD)} leaves its order to the
     * implementation, and the interpreted and the compiled forms differ, which would make a row's
     * bits depend on whether its thread had reached compiled code.
     */
    private static float sumLanes(FloatVector v) {
        // lane i + 8 (then i + 4) brought down by a permute and added to lane i: the sums of adding the
        // halves of narrower shapes, in a shape the JIT keeps in registers (reinterpreting a 512-bit
        // vector's high half as a 256-bit one ran through the Vector API's Java fallback)
        FloatVector x = v;
        if (L == 16) {
            x = x.add(x.rearrange(DOWN8));
        }
        if (L >= 8) {
            x = x.add(x.rearrange(DOWN4));
        }
        return (x.lane(0) + x.lane(2)) + (x.lane(1) + x.lane(3));
    }

    /**
     * The largest lane, folded as {@link #sumLanes} with compare-and-blend (the callers' maxima never
     * hold NaN: they are built by compare-and-blend as well).
     */
    private static float maxLanes(FloatVector v) {
        FloatVector x = v;
        if (L == 16) {
            FloatVector hi = x.rearrange(DOWN8);
            x = x.blend(hi, hi.compare(VectorOperators.GT, x));
        }
        if (L >= 8) {
            FloatVector hi = x.rearrange(DOWN4);
            x = x.blend(hi, hi.compare(VectorOperators.GT, x));
        }
        float m = x.lane(0);
        for (int i = 1; i < 4; i++) {
            float c = x.lane(i);
            if (c > m) {
                m = c;
            }
        }
        return m;
    }

    /** Lane i takes lane i + 8 (mod the lane count), and lane i + 4: the folds of sumLanes and maxLanes. */
    private static final VectorShuffle<Float> DOWN8 = VectorShuffle.fromOp(F, i -> (i + 8) % L);
    private static final VectorShuffle<Float> DOWN4 = VectorShuffle.fromOp(F, i -> (i + 4) % L);

    /**
     * One row at a time, keys along lanes: a masked max pass, then the same inlined exponential as
     * {@link #softmax} over the keys (masked lanes read as −∞ and give 0), and the rescale factor of
     * the row from the same polynomial in lane 0.
     */
    @Override
    public void softmaxByRow(float[] s, int ldR, int n, int rows, float[] m, float[] l, float[] alpha) {
        for (int r = 0; r < rows; r++) {
            int base = r * ldR;
            float mOld = m[r];
            FloatVector mx = FloatVector.broadcast(F, mOld);
            for (int j = 0; j < n; j += L) {
                VectorMask<Float> in = F.indexInRange(j, n);
                FloatVector x = FloatVector.fromArray(F, s, base + j, in).blend(Float.NEGATIVE_INFINITY, in.not());
                mx = mx.blend(x, x.compare(VectorOperators.GT, mx));
            }
            float max = maxLanes(mx);
            float safe = max == Float.NEGATIVE_INFINITY ? 0f : max;
            FloatVector sum = FloatVector.zero(F);
            FloatVector a = sum;
            // j = -L computes alpha from m_old in lane 0, through the same exponential as the keys
            for (int j = -L; j < n; j += L) {
                VectorMask<Float> in = j < 0 ? F.indexInRange(0, 1) : F.indexInRange(j, n);
                FloatVector raw = j < 0 ? FloatVector.broadcast(F, mOld) : FloatVector.fromArray(F, s, base + j, in);
                FloatVector x = raw.blend(Float.NEGATIVE_INFINITY, in.not()).sub(safe);
                VectorMask<Float> tiny = x.compare(VectorOperators.LT, EXP_MIN);
                FloatVector xc = x.blend(EXP_MIN, tiny);
                FloatVector t = xc.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUNDER));
                FloatVector kk = t.sub(ROUNDER);
                FloatVector f = kk.fma(FloatVector.broadcast(F, -LN2_HI), xc);
                f = kk.fma(FloatVector.broadcast(F, -LN2_LO), f);
                FloatVector p = f.fma(FloatVector.broadcast(F, P5), FloatVector.broadcast(F, P4));
                p = p.fma(f, FloatVector.broadcast(F, P3));
                p = p.fma(f, FloatVector.broadcast(F, P2));
                p = p.fma(f, FloatVector.broadcast(F, P1));
                p = p.fma(f, FloatVector.broadcast(F, P0));
                p = p.mul(f.mul(f)).add(f).add(1f);
                IntVector bits = t.reinterpretAsInts().sub(ROUNDER_BITS_MINUS_BIAS).lanewise(VectorOperators.LSHL, 23);
                FloatVector e = p.mul(bits.reinterpretAsFloats()).blend(0f, tiny);
                if (j < 0) {
                    a = e;
                } else {
                    e.intoArray(s, base + j, in);
                    sum = sum.add(e);
                }
            }
            float alphaR = a.lane(0);
            l[r] = l[r] * alphaR + sumLanes(sum);
            m[r] = max;
            alpha[r] = alphaR;
        }
    }

    // ---------------------------------------------------------------- score transforms and softmax

    @Override
    public void softCap(float[] s, int ldS, int n, int rowsPad, float cap) {
        FloatVector capV = FloatVector.broadcast(F, cap);
        for (int j = 0; j < n; j++) {
            for (int r = 0, i = j * ldS; r < rowsPad; r += L, i += L) {
                softCap(FloatVector.fromArray(F, s, i), capV).intoArray(s, i);
            }
        }
    }

    /**
     * {@link SoftCapArithmetic#softCap} lane by lane, in the same operations (no {@code TANH}
     * lanewise: its compiled and interpreted forms round differently).
     */
    private static FloatVector softCap(FloatVector s, FloatVector cap) {
        FloatVector y = s.div(cap);
        FloatVector z = y.abs().mul(-2f);
        VectorMask<Float> tiny = z.compare(VectorOperators.LT, SoftCapArithmetic.EXP_MIN);
        FloatVector zc = z.blend(SoftCapArithmetic.EXP_MIN, tiny);
        FloatVector t = zc.fma(FloatVector.broadcast(F, SoftCapArithmetic.LOG2E),
                FloatVector.broadcast(F, SoftCapArithmetic.ROUNDER));
        FloatVector nk = t.sub(SoftCapArithmetic.ROUNDER);
        FloatVector f = nk.fma(FloatVector.broadcast(F, -SoftCapArithmetic.LN2_HI), zc);
        f = nk.fma(FloatVector.broadcast(F, -SoftCapArithmetic.LN2_LO), f);
        FloatVector p = f.fma(FloatVector.broadcast(F, SoftCapArithmetic.P5), FloatVector.broadcast(F, SoftCapArithmetic.P4));
        p = p.fma(f, FloatVector.broadcast(F, SoftCapArithmetic.P3));
        p = p.fma(f, FloatVector.broadcast(F, SoftCapArithmetic.P2));
        p = p.fma(f, FloatVector.broadcast(F, SoftCapArithmetic.P1));
        p = p.fma(f, FloatVector.broadcast(F, SoftCapArithmetic.P0));
        FloatVector em1 = p.fma(f.mul(f), f);
        FloatVector twoN = t.reinterpretAsInts().sub(SoftCapArithmetic.ROUNDER_BITS_MINUS_BIAS)
                .lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector e = em1.fma(twoN, twoN.sub(1f)).blend(-1f, tiny);
        FloatVector th = e.neg().div(e.add(2f));
        return th.blend(th.neg(), y.compare(VectorOperators.LT, 0f)).mul(cap);
    }

    @Override
    public void refuseRows(float[] s, int at, long refused) {
        FloatVector.fromArray(F, s, at).blend(Float.NEGATIVE_INFINITY, VectorMask.fromLong(F, refused)).intoArray(s, at);
    }

    @Override
    public void addKeyBias(float[] s, int ldS, int n, int rowsPad, float[] bias) {
        for (int j = 0; j < n; j++) {
            FloatVector w = FloatVector.broadcast(F, bias[j]);
            for (int r = 0, i = j * ldS; r < rowsPad; r += L, i += L) {
                FloatVector.fromArray(F, s, i).add(w).intoArray(s, i);
            }
        }
    }

    @Override
    public void softmax(float[] s, int ldS, int n, int rowsPad, float[] m, float[] l, float[] alpha) {
        for (int r = 0; r < rowsPad; r += L) {
            FloatVector mOld = FloatVector.fromArray(F, m, r);
            FloatVector mx = mOld;
            for (int j = 0, i = r; j < n; j++, i += ldS) {
                FloatVector x = FloatVector.fromArray(F, s, i);
                // compare-and-blend is two instructions; max() pays for Java's NaN and -0 rules
                mx = mx.blend(x, x.compare(VectorOperators.GT, mx));
            }
            VectorMask<Float> none = mx.compare(VectorOperators.EQ, Float.NEGATIVE_INFINITY);
            FloatVector safe = mx.blend(0f, none);
            FloatVector sum = FloatVector.zero(F);
            // j = -1 computes alpha = e^(mOld - safe) with the same inlined exponential as the keys:
            // exp() stays in this loop body, so C2 never has to decide whether to inline a 200-byte
            // method (a vector method that is not inlined allocates its results)
            FloatVector a = sum;
            for (int j = -1, i = r - ldS; j < n; j++, i += ldS) {
                FloatVector x = (j < 0 ? mOld : FloatVector.fromArray(F, s, i)).sub(safe);
                VectorMask<Float> tiny = x.compare(VectorOperators.LT, EXP_MIN);
                FloatVector xc = x.blend(EXP_MIN, tiny);
                FloatVector t = xc.fma(FloatVector.broadcast(F, LOG2E), FloatVector.broadcast(F, ROUNDER));
                FloatVector k = t.sub(ROUNDER);
                FloatVector f = k.fma(FloatVector.broadcast(F, -LN2_HI), xc);
                f = k.fma(FloatVector.broadcast(F, -LN2_LO), f);
                FloatVector p = f.fma(FloatVector.broadcast(F, P5), FloatVector.broadcast(F, P4));
                p = p.fma(f, FloatVector.broadcast(F, P3));
                p = p.fma(f, FloatVector.broadcast(F, P2));
                p = p.fma(f, FloatVector.broadcast(F, P1));
                p = p.fma(f, FloatVector.broadcast(F, P0));
                p = p.mul(f.mul(f)).add(f).add(1f);
                IntVector bits = t.reinterpretAsInts().sub(ROUNDER_BITS_MINUS_BIAS).lanewise(VectorOperators.LSHL, 23);
                FloatVector e = p.mul(bits.reinterpretAsFloats()).blend(0f, tiny);
                if (j < 0) {
                    a = e;
                } else {
                    e.intoArray(s, i);
                    sum = sum.add(e);
                }
            }
            FloatVector.fromArray(F, l, r).fma(a, sum).intoArray(l, r);
            mx.intoArray(m, r);
            a.intoArray(alpha, r);
        }
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5·2^23: adding it rounds to an integer held in the low mantissa bits. */
    private static final float ROUNDER = 12582912f;
    private static final float EXP_MIN = -87.33654f;
    private static final int ROUNDER_BITS_MINUS_BIAS = Float.floatToRawIntBits(ROUNDER) - 127;
    private static final float P5 = 1.9875691500e-4f;
    private static final float P4 = 1.3981999507e-3f;
    private static final float P3 = 8.3334519073e-3f;
    private static final float P2 = 4.1665795894e-2f;
    private static final float P1 = 1.6666665459e-1f;
    private static final float P0 = 5.0000001201e-1f;

    /**
     * {@code e^x} for {@code x ≤ 0} (softmax arguments), within 2 ulp, the same arithmetic that
     * {@link #softmax} inlines instead of calling the Vector API's EXP stub: Cody-Waite reduction {@code x = n·ln2 + r}, a degree-6 polynomial
     * for {@code e^r}, and {@code 2^n} built in the exponent bits. Arguments below −87.3 (and −∞)
     * give exactly 0, so masked scores contribute nothing.
     */
    public static FloatVector exp(FloatVector x) {
        VectorMask<Float> tiny = x.compare(VectorOperators.LT, EXP_MIN);
        FloatVector xc = x.blend(EXP_MIN, tiny);
        FloatVector t = xc.fma(LOG2E, ROUNDER);
        FloatVector n = t.sub(ROUNDER);
        FloatVector r = n.fma(FloatVector.broadcast(F, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(F, -LN2_LO), r);
        FloatVector p = r.fma(FloatVector.broadcast(F, P5), FloatVector.broadcast(F, P4));
        p = p.fma(r, FloatVector.broadcast(F, P3));
        p = p.fma(r, FloatVector.broadcast(F, P2));
        p = p.fma(r, FloatVector.broadcast(F, P1));
        p = p.fma(r, FloatVector.broadcast(F, P0));
        p = p.mul(r.mul(r)).add(r).add(1f);
        // t's low mantissa bits hold n + 2^22 + 2^23 offset: rebuild 2^n from them
        IntVector bits = t.reinterpretAsInts().sub(ROUNDER_BITS_MINUS_BIAS).lanewise(VectorOperators.LSHL, 23);
        return p.mul(bits.reinterpretAsFloats()).blend(0f, tiny);
    }

    // ---------------------------------------------------------------- P·V

    @Override
    public void accumulate(float[] p, int ldS, int n, int rows, float[] v, int[] vOff, int cols, float[] o, int ldO,
                           float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        // value rows a fixed stride apart (a compact block copy): offsets the compiler can see as linear in
        // the key, so the loads' range checks leave the loop
        int step = n > 1 ? vOff[1] - vOff[0] : 0;
        boolean affine = n > 0 && step > 0;
        for (int j = 2; affine && j < n; j++) {
            affine = vOff[j] - vOff[j - 1] == step;
        }
        int r = 0;
        for (; r + 6 <= rows; r += 6) {
            int c = 0;
            if (affine) {
                for (; c + 2 * L <= cols; c += 2 * L) {
                    pv6x2Strided(p, ldS, n, r, v, vOff[0], step, c, o, ldO, alpha, fresh, dst, dstAt, l);
                }
            }
            for (; c + 2 * L <= cols; c += 2 * L) {
                pv6x2(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
            for (; c < cols; c += L) {
                pv4x1(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
                pv1x1(p, ldS, n, r + 4, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
                pv1x1(p, ldS, n, r + 5, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
        }
        for (; r + 4 <= rows; r += 4) {
            int c = 0;
            for (; c + 2 * L <= cols; c += 2 * L) {
                pv4x2(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
            for (; c < cols; c += L) {
                pv4x1(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
        }
        for (; r < rows; r++) {
            int c = 0;
            // eight (or four) column-vectors: independent fma chains per key (two leave the loop waiting
            // on the fma latency), each output the same chain over the keys as in the narrower kernels
            for (; c + 8 * L <= cols; c += 8 * L) {
                pv1x8(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
            for (; c + 4 * L <= cols; c += 4 * L) {
                pv1x4(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
            for (; c + 2 * L <= cols; c += 2 * L) {
                pv1x2(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
            for (; c < cols; c += L) {
                pv1x1(p, ldS, n, r, v, vOff, c, o, ldO, alpha, fresh, dst, dstAt, l);
            }
        }
    }

    /** A P·V accumulator's start: {@code alpha·o}, or +0 when {@code fresh} (o is not read). */
    private static FloatVector start(float[] o, int at, float alpha, boolean fresh) {
        return fresh ? FloatVector.zero(F) : FloatVector.fromArray(F, o, at).mul(alpha);
    }

    private static void pv4x2(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector a00 = start(o, o0, alpha[r], fresh);
        FloatVector a01 = start(o, o0 + L, alpha[r], fresh);
        FloatVector a10 = start(o, o1, alpha[r + 1], fresh);
        FloatVector a11 = start(o, o1 + L, alpha[r + 1], fresh);
        FloatVector a20 = start(o, o2, alpha[r + 2], fresh);
        FloatVector a21 = start(o, o2 + L, alpha[r + 2], fresh);
        FloatVector a30 = start(o, o3, alpha[r + 3], fresh);
        FloatVector a31 = start(o, o3 + L, alpha[r + 3], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector v0 = FloatVector.fromArray(F, v, vi);
            FloatVector v1 = FloatVector.fromArray(F, v, vi + L);
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a00 = v0.fma(b, a00);
            a01 = v1.fma(b, a01);
            b = FloatVector.broadcast(F, p[pi + 1]);
            a10 = v0.fma(b, a10);
            a11 = v1.fma(b, a11);
            b = FloatVector.broadcast(F, p[pi + 2]);
            a20 = v0.fma(b, a20);
            a21 = v1.fma(b, a21);
            b = FloatVector.broadcast(F, p[pi + 3]);
            a30 = v0.fma(b, a30);
            a31 = v1.fma(b, a31);
        }
        if (dst == null) {
            a00.intoArray(o, o0);
            a01.intoArray(o, o0 + L);
            a10.intoArray(o, o1);
            a11.intoArray(o, o1 + L);
            a20.intoArray(o, o2);
            a21.intoArray(o, o2 + L);
            a30.intoArray(o, o3);
            a31.intoArray(o, o3 + L);
        } else {
            a00.div(l[r]).intoArray(dst, dstAt[r] + c);
            a01.div(l[r]).intoArray(dst, dstAt[r] + c + L);
            a10.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c);
            a11.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c + L);
            a20.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c);
            a21.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c + L);
            a30.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c);
            a31.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c + L);
        }
    }

    private static void pv6x2(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        int o4 = o3 + ldO;
        int o5 = o4 + ldO;
        FloatVector a00 = start(o, o0, alpha[r], fresh);
        FloatVector a01 = start(o, o0 + L, alpha[r], fresh);
        FloatVector a10 = start(o, o1, alpha[r + 1], fresh);
        FloatVector a11 = start(o, o1 + L, alpha[r + 1], fresh);
        FloatVector a20 = start(o, o2, alpha[r + 2], fresh);
        FloatVector a21 = start(o, o2 + L, alpha[r + 2], fresh);
        FloatVector a30 = start(o, o3, alpha[r + 3], fresh);
        FloatVector a31 = start(o, o3 + L, alpha[r + 3], fresh);
        FloatVector a40 = start(o, o4, alpha[r + 4], fresh);
        FloatVector a41 = start(o, o4 + L, alpha[r + 4], fresh);
        FloatVector a50 = start(o, o5, alpha[r + 5], fresh);
        FloatVector a51 = start(o, o5 + L, alpha[r + 5], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector v0 = FloatVector.fromArray(F, v, vi);
            FloatVector v1 = FloatVector.fromArray(F, v, vi + L);
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a00 = v0.fma(b, a00);
            a01 = v1.fma(b, a01);
            b = FloatVector.broadcast(F, p[pi + 1]);
            a10 = v0.fma(b, a10);
            a11 = v1.fma(b, a11);
            b = FloatVector.broadcast(F, p[pi + 2]);
            a20 = v0.fma(b, a20);
            a21 = v1.fma(b, a21);
            b = FloatVector.broadcast(F, p[pi + 3]);
            a30 = v0.fma(b, a30);
            a31 = v1.fma(b, a31);
            b = FloatVector.broadcast(F, p[pi + 4]);
            a40 = v0.fma(b, a40);
            a41 = v1.fma(b, a41);
            b = FloatVector.broadcast(F, p[pi + 5]);
            a50 = v0.fma(b, a50);
            a51 = v1.fma(b, a51);
        }
        if (dst == null) {
            a00.intoArray(o, o0);
            a01.intoArray(o, o0 + L);
            a10.intoArray(o, o1);
            a11.intoArray(o, o1 + L);
            a20.intoArray(o, o2);
            a21.intoArray(o, o2 + L);
            a30.intoArray(o, o3);
            a31.intoArray(o, o3 + L);
            a40.intoArray(o, o4);
            a41.intoArray(o, o4 + L);
            a50.intoArray(o, o5);
            a51.intoArray(o, o5 + L);
        } else {
            a00.div(l[r]).intoArray(dst, dstAt[r] + c);
            a01.div(l[r]).intoArray(dst, dstAt[r] + c + L);
            a10.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c);
            a11.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c + L);
            a20.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c);
            a21.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c + L);
            a30.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c);
            a31.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c + L);
            a40.div(l[r + 4]).intoArray(dst, dstAt[r + 4] + c);
            a41.div(l[r + 4]).intoArray(dst, dstAt[r + 4] + c + L);
            a50.div(l[r + 5]).intoArray(dst, dstAt[r + 5] + c);
            a51.div(l[r + 5]).intoArray(dst, dstAt[r + 5] + c + L);
        }
    }

    /** {@link #pv6x2} for value rows {@code step} floats apart from {@code vBase}: the same arithmetic. */
    private static void pv6x2Strided(float[] p, int ldS, int n, int r, float[] v, int vBase, int step, int c, float[] o,
                                     int ldO, float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        int o4 = o3 + ldO;
        int o5 = o4 + ldO;
        FloatVector a00 = start(o, o0, alpha[r], fresh);
        FloatVector a01 = start(o, o0 + L, alpha[r], fresh);
        FloatVector a10 = start(o, o1, alpha[r + 1], fresh);
        FloatVector a11 = start(o, o1 + L, alpha[r + 1], fresh);
        FloatVector a20 = start(o, o2, alpha[r + 2], fresh);
        FloatVector a21 = start(o, o2 + L, alpha[r + 2], fresh);
        FloatVector a30 = start(o, o3, alpha[r + 3], fresh);
        FloatVector a31 = start(o, o3 + L, alpha[r + 3], fresh);
        FloatVector a40 = start(o, o4, alpha[r + 4], fresh);
        FloatVector a41 = start(o, o4 + L, alpha[r + 4], fresh);
        FloatVector a50 = start(o, o5, alpha[r + 5], fresh);
        FloatVector a51 = start(o, o5 + L, alpha[r + 5], fresh);
        for (int j = 0, pi = r, vi = vBase + c; j < n; j++, pi += ldS, vi += step) {
            FloatVector v0 = FloatVector.fromArray(F, v, vi);
            FloatVector v1 = FloatVector.fromArray(F, v, vi + L);
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a00 = v0.fma(b, a00);
            a01 = v1.fma(b, a01);
            b = FloatVector.broadcast(F, p[pi + 1]);
            a10 = v0.fma(b, a10);
            a11 = v1.fma(b, a11);
            b = FloatVector.broadcast(F, p[pi + 2]);
            a20 = v0.fma(b, a20);
            a21 = v1.fma(b, a21);
            b = FloatVector.broadcast(F, p[pi + 3]);
            a30 = v0.fma(b, a30);
            a31 = v1.fma(b, a31);
            b = FloatVector.broadcast(F, p[pi + 4]);
            a40 = v0.fma(b, a40);
            a41 = v1.fma(b, a41);
            b = FloatVector.broadcast(F, p[pi + 5]);
            a50 = v0.fma(b, a50);
            a51 = v1.fma(b, a51);
        }
        if (dst == null) {
            a00.intoArray(o, o0);
            a01.intoArray(o, o0 + L);
            a10.intoArray(o, o1);
            a11.intoArray(o, o1 + L);
            a20.intoArray(o, o2);
            a21.intoArray(o, o2 + L);
            a30.intoArray(o, o3);
            a31.intoArray(o, o3 + L);
            a40.intoArray(o, o4);
            a41.intoArray(o, o4 + L);
            a50.intoArray(o, o5);
            a51.intoArray(o, o5 + L);
        } else {
            a00.div(l[r]).intoArray(dst, dstAt[r] + c);
            a01.div(l[r]).intoArray(dst, dstAt[r] + c + L);
            a10.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c);
            a11.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c + L);
            a20.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c);
            a21.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c + L);
            a30.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c);
            a31.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c + L);
            a40.div(l[r + 4]).intoArray(dst, dstAt[r + 4] + c);
            a41.div(l[r + 4]).intoArray(dst, dstAt[r + 4] + c + L);
            a50.div(l[r + 5]).intoArray(dst, dstAt[r + 5] + c);
            a51.div(l[r + 5]).intoArray(dst, dstAt[r + 5] + c + L);
        }
    }

    private static void pv4x1(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        FloatVector a0 = start(o, o0, alpha[r], fresh);
        FloatVector a1 = start(o, o0 + ldO, alpha[r + 1], fresh);
        FloatVector a2 = start(o, o0 + 2 * ldO, alpha[r + 2], fresh);
        FloatVector a3 = start(o, o0 + 3 * ldO, alpha[r + 3], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector x = FloatVector.fromArray(F, v, vi);
            a0 = x.fma(FloatVector.broadcast(F, p[pi]), a0);
            a1 = x.fma(FloatVector.broadcast(F, p[pi + 1]), a1);
            a2 = x.fma(FloatVector.broadcast(F, p[pi + 2]), a2);
            a3 = x.fma(FloatVector.broadcast(F, p[pi + 3]), a3);
        }
        if (dst == null) {
            a0.intoArray(o, o0);
            a1.intoArray(o, o0 + ldO);
            a2.intoArray(o, o0 + 2 * ldO);
            a3.intoArray(o, o0 + 3 * ldO);
        } else {
            a0.div(l[r]).intoArray(dst, dstAt[r] + c);
            a1.div(l[r + 1]).intoArray(dst, dstAt[r + 1] + c);
            a2.div(l[r + 2]).intoArray(dst, dstAt[r + 2] + c);
            a3.div(l[r + 3]).intoArray(dst, dstAt[r + 3] + c);
        }
    }

    private static void pv1x8(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        float al = alpha[r];
        FloatVector a0 = start(o, o0, al, fresh), a1 = start(o, o0 + L, al, fresh);
        FloatVector a2 = start(o, o0 + 2 * L, al, fresh), a3 = start(o, o0 + 3 * L, al, fresh);
        FloatVector a4 = start(o, o0 + 4 * L, al, fresh), a5 = start(o, o0 + 5 * L, al, fresh);
        FloatVector a6 = start(o, o0 + 6 * L, al, fresh), a7 = start(o, o0 + 7 * L, al, fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a0 = FloatVector.fromArray(F, v, vi).fma(b, a0);
            a1 = FloatVector.fromArray(F, v, vi + L).fma(b, a1);
            a2 = FloatVector.fromArray(F, v, vi + 2 * L).fma(b, a2);
            a3 = FloatVector.fromArray(F, v, vi + 3 * L).fma(b, a3);
            a4 = FloatVector.fromArray(F, v, vi + 4 * L).fma(b, a4);
            a5 = FloatVector.fromArray(F, v, vi + 5 * L).fma(b, a5);
            a6 = FloatVector.fromArray(F, v, vi + 6 * L).fma(b, a6);
            a7 = FloatVector.fromArray(F, v, vi + 7 * L).fma(b, a7);
        }
        if (dst != null) {
            float inv = l[r];
            o = dst;
            o0 = dstAt[r] + c;
            a0 = a0.div(inv);
            a1 = a1.div(inv);
            a2 = a2.div(inv);
            a3 = a3.div(inv);
            a4 = a4.div(inv);
            a5 = a5.div(inv);
            a6 = a6.div(inv);
            a7 = a7.div(inv);
        }
        a0.intoArray(o, o0);
        a1.intoArray(o, o0 + L);
        a2.intoArray(o, o0 + 2 * L);
        a3.intoArray(o, o0 + 3 * L);
        a4.intoArray(o, o0 + 4 * L);
        a5.intoArray(o, o0 + 5 * L);
        a6.intoArray(o, o0 + 6 * L);
        a7.intoArray(o, o0 + 7 * L);
    }

    private static void pv1x4(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        FloatVector a0 = start(o, o0, alpha[r], fresh);
        FloatVector a1 = start(o, o0 + L, alpha[r], fresh);
        FloatVector a2 = start(o, o0 + 2 * L, alpha[r], fresh);
        FloatVector a3 = start(o, o0 + 3 * L, alpha[r], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a0 = FloatVector.fromArray(F, v, vi).fma(b, a0);
            a1 = FloatVector.fromArray(F, v, vi + L).fma(b, a1);
            a2 = FloatVector.fromArray(F, v, vi + 2 * L).fma(b, a2);
            a3 = FloatVector.fromArray(F, v, vi + 3 * L).fma(b, a3);
        }
        if (dst == null) {
            a0.intoArray(o, o0);
            a1.intoArray(o, o0 + L);
            a2.intoArray(o, o0 + 2 * L);
            a3.intoArray(o, o0 + 3 * L);
        } else {
            a0.div(l[r]).intoArray(dst, dstAt[r] + c);
            a1.div(l[r]).intoArray(dst, dstAt[r] + c + L);
            a2.div(l[r]).intoArray(dst, dstAt[r] + c + 2 * L);
            a3.div(l[r]).intoArray(dst, dstAt[r] + c + 3 * L);
        }
    }

    private static void pv1x2(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        FloatVector a0 = start(o, o0, alpha[r], fresh);
        FloatVector a1 = start(o, o0 + L, alpha[r], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            FloatVector b = FloatVector.broadcast(F, p[pi]);
            a0 = FloatVector.fromArray(F, v, vi).fma(b, a0);
            a1 = FloatVector.fromArray(F, v, vi + L).fma(b, a1);
        }
        if (dst == null) {
            a0.intoArray(o, o0);
            a1.intoArray(o, o0 + L);
        } else {
            a0.div(l[r]).intoArray(dst, dstAt[r] + c);
            a1.div(l[r]).intoArray(dst, dstAt[r] + c + L);
        }
    }

    private static void pv1x1(float[] p, int ldS, int n, int r, float[] v, int[] vOff, int c, float[] o, int ldO,
                              float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l) {
        int o0 = r * ldO + c;
        FloatVector a = start(o, o0, alpha[r], fresh);
        for (int j = 0, pi = r; j < n; j++, pi += ldS) {
            int vi = vOff[j] + c;
            a = FloatVector.fromArray(F, v, vi).fma(FloatVector.broadcast(F, p[pi]), a);
        }
        if (dst == null) {
            a.intoArray(o, o0);
        } else {
            a.div(l[r]).intoArray(dst, dstAt[r] + c);
        }
    }

    // ---------------------------------------------------------------- tile setup and finish

    @Override
    public void transposeScaled(float[] src, int[] rowAt, int rows, int rowsPad, int dim, float scale,
                                float[] qT) {
        // L×L blocks transposed in registers (16 or 8 lanes), the other columns one gather per
        // (row-vector, d): lane i reads src[rowAt[r + i] + d]; rows past the last full vector in scalar code
        int r = 0;
        for (; r + L <= rows; r += L) {
            int d = 0;
            if (L == 16) {
                for (; d + 16 <= dim; d += 16) {
                    transpose16(src, rowAt, r, d, scale, qT, rowsPad);
                }
            } else if (L == 8) {
                for (; d + 8 <= dim; d += 8) {
                    transpose8(src, rowAt, r, d, scale, qT, rowsPad);
                }
            }
            for (int at = d * rowsPad + r; d < dim; d++, at += rowsPad) {
                FloatVector.fromArray(F, src, d, rowAt, r).mul(scale).intoArray(qT, at);
            }
        }
        for (; r < rows; r++) {
            int from = rowAt[r];
            for (int d = 0, at = r; d < dim; d++, at += rowsPad) {
                qT[at] = src[from + d] * scale;
            }
        }
        for (; r < rowsPad; r++) {
            for (int d = 0, at = r; d < dim; d++, at += rowsPad) {
                qT[at] = 0f;
            }
        }
    }

    /**
     * The lane selections of {@link #transpose16} / {@link #transpose8}: per round (halves of width s
     * = n/2, n/4, .., 1), {@code lo[l] = l&s ? n + l − s : l} and {@code hi[l] = l&s ? n + l : l + s}
     * (an index {@code ≥ n} selects lane {@code index − n} of the second vector); null when the
     * species has another width.
     */
    private static FloatVector[] transposeSelections(int n) {
        if (L != n) {
            return null;
        }
        FloatVector[] t = new FloatVector[2 * (Integer.numberOfTrailingZeros(n))];
        int k = 0;
        for (int s = n / 2; s >= 1; s /= 2, k += 2) {
            float[] lo = new float[n];
            float[] hi = new float[n];
            for (int l = 0; l < n; l++) {
                lo[l] = (l & s) != 0 ? n + l - s : l;
                hi[l] = (l & s) != 0 ? n + l : l + s;
            }
            t[k] = FloatVector.fromArray(F, lo, 0);
            t[k + 1] = FloatVector.fromArray(F, hi, 0);
        }
        return t;
    }

    private static final FloatVector[] T16 = transposeSelections(16);
    private static final FloatVector[] T8 = transposeSelections(8);

    /**
     * Transposes the 16×16 block of rows {@code rowAt[r .. r+16)}, columns {@code d0 .. d0+16} of {@code src}
     * into {@code qT} (column {@code d0+i} to {@code qT[(d0+i)·ldQ + r ..]}), scaled, in registers:
     * 4 rounds of two-source lane selections, each swapping the off-diagonal halves of
     * ever smaller diagonal blocks.
     */
    private static void transpose16(float[] src, int[] rowAt, int r, int d0, float scale, float[] qT, int ldQ) {
        FloatVector a0 = FloatVector.fromArray(F, src, rowAt[r] + d0);
        FloatVector a1 = FloatVector.fromArray(F, src, rowAt[r + 1] + d0);
        FloatVector a2 = FloatVector.fromArray(F, src, rowAt[r + 2] + d0);
        FloatVector a3 = FloatVector.fromArray(F, src, rowAt[r + 3] + d0);
        FloatVector a4 = FloatVector.fromArray(F, src, rowAt[r + 4] + d0);
        FloatVector a5 = FloatVector.fromArray(F, src, rowAt[r + 5] + d0);
        FloatVector a6 = FloatVector.fromArray(F, src, rowAt[r + 6] + d0);
        FloatVector a7 = FloatVector.fromArray(F, src, rowAt[r + 7] + d0);
        FloatVector a8 = FloatVector.fromArray(F, src, rowAt[r + 8] + d0);
        FloatVector a9 = FloatVector.fromArray(F, src, rowAt[r + 9] + d0);
        FloatVector a10 = FloatVector.fromArray(F, src, rowAt[r + 10] + d0);
        FloatVector a11 = FloatVector.fromArray(F, src, rowAt[r + 11] + d0);
        FloatVector a12 = FloatVector.fromArray(F, src, rowAt[r + 12] + d0);
        FloatVector a13 = FloatVector.fromArray(F, src, rowAt[r + 13] + d0);
        FloatVector a14 = FloatVector.fromArray(F, src, rowAt[r + 14] + d0);
        FloatVector a15 = FloatVector.fromArray(F, src, rowAt[r + 15] + d0);
        FloatVector t;
        FloatVector lo0 = T16[0], hi0 = T16[1];
        t = lo0.selectFrom(a0, a8);
        a8 = hi0.selectFrom(a0, a8);
        a0 = t;
        t = lo0.selectFrom(a1, a9);
        a9 = hi0.selectFrom(a1, a9);
        a1 = t;
        t = lo0.selectFrom(a2, a10);
        a10 = hi0.selectFrom(a2, a10);
        a2 = t;
        t = lo0.selectFrom(a3, a11);
        a11 = hi0.selectFrom(a3, a11);
        a3 = t;
        t = lo0.selectFrom(a4, a12);
        a12 = hi0.selectFrom(a4, a12);
        a4 = t;
        t = lo0.selectFrom(a5, a13);
        a13 = hi0.selectFrom(a5, a13);
        a5 = t;
        t = lo0.selectFrom(a6, a14);
        a14 = hi0.selectFrom(a6, a14);
        a6 = t;
        t = lo0.selectFrom(a7, a15);
        a15 = hi0.selectFrom(a7, a15);
        a7 = t;
        FloatVector lo1 = T16[2], hi1 = T16[3];
        t = lo1.selectFrom(a0, a4);
        a4 = hi1.selectFrom(a0, a4);
        a0 = t;
        t = lo1.selectFrom(a1, a5);
        a5 = hi1.selectFrom(a1, a5);
        a1 = t;
        t = lo1.selectFrom(a2, a6);
        a6 = hi1.selectFrom(a2, a6);
        a2 = t;
        t = lo1.selectFrom(a3, a7);
        a7 = hi1.selectFrom(a3, a7);
        a3 = t;
        t = lo1.selectFrom(a8, a12);
        a12 = hi1.selectFrom(a8, a12);
        a8 = t;
        t = lo1.selectFrom(a9, a13);
        a13 = hi1.selectFrom(a9, a13);
        a9 = t;
        t = lo1.selectFrom(a10, a14);
        a14 = hi1.selectFrom(a10, a14);
        a10 = t;
        t = lo1.selectFrom(a11, a15);
        a15 = hi1.selectFrom(a11, a15);
        a11 = t;
        FloatVector lo2 = T16[4], hi2 = T16[5];
        t = lo2.selectFrom(a0, a2);
        a2 = hi2.selectFrom(a0, a2);
        a0 = t;
        t = lo2.selectFrom(a1, a3);
        a3 = hi2.selectFrom(a1, a3);
        a1 = t;
        t = lo2.selectFrom(a4, a6);
        a6 = hi2.selectFrom(a4, a6);
        a4 = t;
        t = lo2.selectFrom(a5, a7);
        a7 = hi2.selectFrom(a5, a7);
        a5 = t;
        t = lo2.selectFrom(a8, a10);
        a10 = hi2.selectFrom(a8, a10);
        a8 = t;
        t = lo2.selectFrom(a9, a11);
        a11 = hi2.selectFrom(a9, a11);
        a9 = t;
        t = lo2.selectFrom(a12, a14);
        a14 = hi2.selectFrom(a12, a14);
        a12 = t;
        t = lo2.selectFrom(a13, a15);
        a15 = hi2.selectFrom(a13, a15);
        a13 = t;
        FloatVector lo3 = T16[6], hi3 = T16[7];
        t = lo3.selectFrom(a0, a1);
        a1 = hi3.selectFrom(a0, a1);
        a0 = t;
        t = lo3.selectFrom(a2, a3);
        a3 = hi3.selectFrom(a2, a3);
        a2 = t;
        t = lo3.selectFrom(a4, a5);
        a5 = hi3.selectFrom(a4, a5);
        a4 = t;
        t = lo3.selectFrom(a6, a7);
        a7 = hi3.selectFrom(a6, a7);
        a6 = t;
        t = lo3.selectFrom(a8, a9);
        a9 = hi3.selectFrom(a8, a9);
        a8 = t;
        t = lo3.selectFrom(a10, a11);
        a11 = hi3.selectFrom(a10, a11);
        a10 = t;
        t = lo3.selectFrom(a12, a13);
        a13 = hi3.selectFrom(a12, a13);
        a12 = t;
        t = lo3.selectFrom(a14, a15);
        a15 = hi3.selectFrom(a14, a15);
        a14 = t;
        a0.mul(scale).intoArray(qT, d0 * ldQ + r);
        a1.mul(scale).intoArray(qT, (d0 + 1) * ldQ + r);
        a2.mul(scale).intoArray(qT, (d0 + 2) * ldQ + r);
        a3.mul(scale).intoArray(qT, (d0 + 3) * ldQ + r);
        a4.mul(scale).intoArray(qT, (d0 + 4) * ldQ + r);
        a5.mul(scale).intoArray(qT, (d0 + 5) * ldQ + r);
        a6.mul(scale).intoArray(qT, (d0 + 6) * ldQ + r);
        a7.mul(scale).intoArray(qT, (d0 + 7) * ldQ + r);
        a8.mul(scale).intoArray(qT, (d0 + 8) * ldQ + r);
        a9.mul(scale).intoArray(qT, (d0 + 9) * ldQ + r);
        a10.mul(scale).intoArray(qT, (d0 + 10) * ldQ + r);
        a11.mul(scale).intoArray(qT, (d0 + 11) * ldQ + r);
        a12.mul(scale).intoArray(qT, (d0 + 12) * ldQ + r);
        a13.mul(scale).intoArray(qT, (d0 + 13) * ldQ + r);
        a14.mul(scale).intoArray(qT, (d0 + 14) * ldQ + r);
        a15.mul(scale).intoArray(qT, (d0 + 15) * ldQ + r);
    }

    /**
     * Transposes the 8×8 block of rows {@code rowAt[r .. r+8)}, columns {@code d0 .. d0+8} of {@code src}
     * into {@code qT} (column {@code d0+i} to {@code qT[(d0+i)·ldQ + r ..]}), scaled, in registers:
     * 3 rounds of two-source lane selections, each swapping the off-diagonal halves of
     * ever smaller diagonal blocks.
     */
    private static void transpose8(float[] src, int[] rowAt, int r, int d0, float scale, float[] qT, int ldQ) {
        FloatVector a0 = FloatVector.fromArray(F, src, rowAt[r] + d0);
        FloatVector a1 = FloatVector.fromArray(F, src, rowAt[r + 1] + d0);
        FloatVector a2 = FloatVector.fromArray(F, src, rowAt[r + 2] + d0);
        FloatVector a3 = FloatVector.fromArray(F, src, rowAt[r + 3] + d0);
        FloatVector a4 = FloatVector.fromArray(F, src, rowAt[r + 4] + d0);
        FloatVector a5 = FloatVector.fromArray(F, src, rowAt[r + 5] + d0);
        FloatVector a6 = FloatVector.fromArray(F, src, rowAt[r + 6] + d0);
        FloatVector a7 = FloatVector.fromArray(F, src, rowAt[r + 7] + d0);
        FloatVector t;
        FloatVector lo0 = T8[0], hi0 = T8[1];
        t = lo0.selectFrom(a0, a4);
        a4 = hi0.selectFrom(a0, a4);
        a0 = t;
        t = lo0.selectFrom(a1, a5);
        a5 = hi0.selectFrom(a1, a5);
        a1 = t;
        t = lo0.selectFrom(a2, a6);
        a6 = hi0.selectFrom(a2, a6);
        a2 = t;
        t = lo0.selectFrom(a3, a7);
        a7 = hi0.selectFrom(a3, a7);
        a3 = t;
        FloatVector lo1 = T8[2], hi1 = T8[3];
        t = lo1.selectFrom(a0, a2);
        a2 = hi1.selectFrom(a0, a2);
        a0 = t;
        t = lo1.selectFrom(a1, a3);
        a3 = hi1.selectFrom(a1, a3);
        a1 = t;
        t = lo1.selectFrom(a4, a6);
        a6 = hi1.selectFrom(a4, a6);
        a4 = t;
        t = lo1.selectFrom(a5, a7);
        a7 = hi1.selectFrom(a5, a7);
        a5 = t;
        FloatVector lo2 = T8[4], hi2 = T8[5];
        t = lo2.selectFrom(a0, a1);
        a1 = hi2.selectFrom(a0, a1);
        a0 = t;
        t = lo2.selectFrom(a2, a3);
        a3 = hi2.selectFrom(a2, a3);
        a2 = t;
        t = lo2.selectFrom(a4, a5);
        a5 = hi2.selectFrom(a4, a5);
        a4 = t;
        t = lo2.selectFrom(a6, a7);
        a7 = hi2.selectFrom(a6, a7);
        a6 = t;
        a0.mul(scale).intoArray(qT, d0 * ldQ + r);
        a1.mul(scale).intoArray(qT, (d0 + 1) * ldQ + r);
        a2.mul(scale).intoArray(qT, (d0 + 2) * ldQ + r);
        a3.mul(scale).intoArray(qT, (d0 + 3) * ldQ + r);
        a4.mul(scale).intoArray(qT, (d0 + 4) * ldQ + r);
        a5.mul(scale).intoArray(qT, (d0 + 5) * ldQ + r);
        a6.mul(scale).intoArray(qT, (d0 + 6) * ldQ + r);
        a7.mul(scale).intoArray(qT, (d0 + 7) * ldQ + r);
    }

    @Override
    public void normalise(float[] o, int oAt, float l, float[] dst, int dstAt, int n) {
        int c = 0;
        for (; c + L <= n; c += L) {
            FloatVector.fromArray(F, o, oAt + c).div(l).intoArray(dst, dstAt + c);
        }
        for (; c < n; c++) {
            dst[dstAt + c] = o[oAt + c] / l;
        }
    }

    // ---------------------------------------------------------------- conversions

    @Override
    public void widenE4m3(byte[] src, int srcAt, float scale, float[] dst, int dstAt, int n) {
        // no f32 subnormal enters an operation (a vector with one subnormal lane took a microcode assist,
        // 2.5 × slower on Zen 4): a normal code's magnitude is its 7 low bits at bit 20 with the exponent
        // rebased by 120; a subnormal one (exponent 0) is its mantissa m × 2^-9, by conversion; then the
        // sign bit, the NaN codes, and × scale, the one rounding, as in DType.e4m3ToFloat(code) × scale
        int i = 0;
        for (; B != null && i + L <= n; i += L) {
            IntVector c = (IntVector) ByteVector.fromArray(B, src, srcAt + i).convertShape(VectorOperators.B2I, I, 0);
            IntVector mag = c.and(0x7F);
            FloatVector normal = mag.lanewise(VectorOperators.LSHL, 20).add(120 << 23).reinterpretAsFloats();
            FloatVector subnormal = ((FloatVector) mag.convert(VectorOperators.I2F, 0)).mul(0x1p-9f);
            FloatVector v = normal.blend(subnormal, mag.compare(VectorOperators.LT, 8).cast(F)).reinterpretAsInts()
                    .or(c.and(0x80000000)).reinterpretAsFloats().mul(scale);
            v.blend(Float.NaN, mag.compare(VectorOperators.EQ, 0x7F).cast(F)).intoArray(dst, dstAt + i);
        }
        for (; i < n; i++) {
            dst[dstAt + i] = dev.sparsa.tensor.DType.e4m3ToFloat(src[srcAt + i]) * scale;
        }
    }

    @Override
    public void widenBf16(short[] src, int srcAt, float[] dst, int dstAt, int n) {
        // bf16 is the high half of an f32: widen the shorts to ints and shift them up by 16
        int i = 0;
        for (; i + L <= n; i += L) {
            ShortVector sv = ShortVector.fromArray(S, src, srcAt + i);
            IntVector iv = (IntVector) sv.convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0);
            iv.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, dstAt + i);
        }
        for (; i < n; i++) {
            dst[dstAt + i] = Float.intBitsToFloat(src[srcAt + i] << 16);
        }
    }
}
