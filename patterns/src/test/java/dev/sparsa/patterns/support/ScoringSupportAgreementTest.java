package dev.sparsa.patterns.support;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.internal.VectorModule;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The Vector API and plain-Java implementations of the estimators' loops give bitwise the same
 * results, on odd and prime sizes and on NaN, ±∞ and signed zeros. Needs the incubator module (the
 * default test run has it; the no-vector-module run skips this class).
 */
class ScoringSupportAgreementTest {
    private static final int[] SIZES = {0, 1, 3, 7, 8, 13, 31, 64, 65, 127, 130, 257};

    private static ScoringSupport vector() {
        assumeTrue(VectorModule.present(), "needs --add-modules jdk.incubator.vector");
        return ScoringProvider.vector();
    }

    private static float[] values(SplittableRandom rnd, int n, boolean specials) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            int kind = specials ? rnd.nextInt(12) : 11;
            a[i] = switch (kind) {
                case 0 -> Float.NaN;
                case 1 -> Float.POSITIVE_INFINITY;
                case 2 -> Float.NEGATIVE_INFINITY;
                case 3 -> -0f;
                case 4 -> 0f;
                case 5 -> 0.5f;
                default -> (float) rnd.nextGaussian();
            };
        }
        return a;
    }

    @Test
    void scansAgree() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(21);
        for (int n : SIZES) {
            for (boolean specials : new boolean[] {false, true}) {
                float[] a = values(rnd, n + 5, specials);
                int from = rnd.nextInt(6);
                int m = Math.min(n, a.length - from);
                String at = "n=" + m + " from=" + from + " specials=" + specials;
                assertEquals(s.maxSkippingNaN(a, from, m), v.maxSkippingNaN(a, from, m), at);
                assertEquals(s.maxIfFinite(a, from, m), v.maxIfFinite(a, from, m), at);
                Vectors.Range rs = s.range(a, from, m);
                Vectors.Range rv = v.range(a, from, m);
                assertEquals(rs.count(), rv.count(), at);
                // -0 and +0 compare equal (==): either may come out as the extreme, and both rank alike
                assertTrue(rs.min() == rv.min(), at + " min " + rs.min() + " vs " + rv.min());
                assertTrue(rs.max() == rv.max(), at + " max " + rs.max() + " vs " + rv.max());
                float t = m == 0 ? 0f : a[from + rnd.nextInt(m)];
                assertEquals(s.countAtLeast(a, from, m, t), v.countAtLeast(a, from, m, t), at);
                long[] bs = new long[(m + 63) / 64 + 1];
                long[] bv = bs.clone();
                s.bitsAtLeast(a, from, m, t, bs);
                v.bitsAtLeast(a, from, m, t, bv);
                assertArrayEquals(bs, bv, at);
                float lo = Math.min(t, -0.25f);
                float hi = Math.max(t, 0.75f);
                int[] is = new int[m];
                int[] iv = new int[m];
                long[] as = new long[(m + 63) / 64 + 1];
                long[] av = as.clone();
                int ns = s.split(a, from, m, lo, hi, as, is);
                int nv = v.split(a, from, m, lo, hi, av, iv);
                assertEquals(ns, nv, at);
                assertArrayEquals(is, iv, at);
                assertArrayEquals(as, av, at);
                // the scores >= t and their indices, ascending, against the definition
                int expect = 0;
                int slack = Math.max(s.panelLanes(), v.panelLanes());
                float[] wantV = new float[m];
                int[] wantI = new int[m];
                for (int i = 0; i < m; i++) {
                    if (a[from + i] >= t) {
                        wantV[expect] = a[from + i];
                        wantI[expect++] = i;
                    }
                }
                for (ScoringSupport impl : new ScoringSupport[] {s, v}) {
                    float[] cv = new float[m + slack];
                    int[] ci = new int[m + slack];
                    assertEquals(expect, impl.compressAtLeast(a, from, m, t, cv, ci), impl.description() + " " + at);
                    for (int j = 0; j < expect; j++) {
                        assertEquals(Float.floatToRawIntBits(wantV[j]), Float.floatToRawIntBits(cv[j]), impl.description() + " " + at);
                        assertEquals(wantI[j], ci[j], impl.description() + " " + at);
                    }
                }
            }
        }
    }

    @Test
    void rowSumsAgree() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(25);
        for (int d : SIZES) {
            for (int rows : new int[] {0, 1, 2, 5, 64}) {
                boolean specials = rnd.nextBoolean();
                int srcOff = rnd.nextInt(4);
                int dstOff = rnd.nextInt(4);
                float[] src = values(rnd, srcOff + rows * d + 3, specials);
                float[] dst = values(rnd, dstOff + d + 3, specials);
                float[] expect = dst.clone();
                for (int r = 0; r < rows; r++) { // the definition: one row after another
                    for (int x = 0; x < d; x++) {
                        expect[dstOff + x] = expect[dstOff + x] + src[srcOff + r * d + x];
                    }
                }
                float[] as = dst.clone();
                float[] av = dst.clone();
                s.addRows(src, srcOff, rows, d, as, dstOff);
                v.addRows(src, srcOff, rows, d, av, dstOff);
                for (int i = 0; i < dst.length; i++) {
                    // bit for bit, except that a NaN sum may carry either operand's sign (x86 returns
                    // the first NaN operand, and the compiler may swap the operands of an addition)
                    String where = "d=" + d + " rows=" + rows + " i=" + i;
                    assertEquals(Float.floatToIntBits(expect[i]), Float.floatToIntBits(as[i]), "scalar " + where);
                    assertEquals(Float.floatToIntBits(expect[i]), Float.floatToIntBits(av[i]), "vector " + where);
                }
            }
        }
    }

    /**
     * Panels scaled to unit length in place, and rows scaled by the factors, against the plain
     * definition (each lane's sum of squares in double in channel order, then each value times
     * {@code 1/sqrt} of it in double), on zero lanes, huge and tiny values and specials.
     */
    @Test
    void panelsNormaliseAsTheDefinition() {
        SplittableRandom rnd = new SplittableRandom(41);
        for (ScoringSupport impl : new ScoringSupport[] {ScoringProvider.scalar(), vector()}) {
            int lanes = impl.panelLanes();
            for (int d : new int[] {1, 3, 7, 8, 13, 64, 127, 128, 130}) {
                for (int trial = 0; trial < 6; trial++) {
                    boolean specials = trial == 5;
                    int base = rnd.nextInt(5);
                    float[] p = values(rnd, base + lanes * d + 3, specials);
                    for (int i = 0; i < p.length; i++) {
                        p[i] *= (float) Math.exp(rnd.nextGaussian() * (trial == 4 ? 40 : 3));
                    }
                    int zeroLane = rnd.nextInt(lanes);
                    for (int x = 0; x < d; x++) {
                        p[base + x * lanes + zeroLane] = trial % 2 == 0 ? 0f : -0f;
                    }
                    float[] want = p.clone();
                    double[] wantInv = new double[lanes];
                    for (int j = 0; j < lanes; j++) {
                        double sum = 0;
                        for (int x = 0; x < d; x++) {
                            sum += (double) want[base + x * lanes + j] * want[base + x * lanes + j];
                        }
                        wantInv[j] = sum > 0 ? 1.0 / Math.sqrt(sum) : 0;
                        for (int x = 0; x < d; x++) {
                            want[base + x * lanes + j] = (float) (want[base + x * lanes + j] * wantInv[j]);
                        }
                    }
                    float[] got = p.clone();
                    double[] inv = new double[lanes];
                    impl.normalizePanel(got, base, d, inv);
                    String where = impl.description() + " d=" + d + " trial=" + trial;
                    for (int i = 0; i < p.length; i++) {
                        assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]), where + " i=" + i);
                    }
                    for (int j = 0; j < lanes; j++) {
                        assertEquals(Double.doubleToLongBits(wantInv[j]), Double.doubleToLongBits(inv[j]), where + " lane " + j);
                    }
                    // rows scaled by the same factors
                    int rows = 1 + rnd.nextInt(lanes);
                    float[] src = values(rnd, rows * d, specials);
                    int dstOff = rnd.nextInt(4);
                    float[] dst = values(rnd, dstOff + rows * d + 2, false);
                    float[] wantDst = dst.clone();
                    for (int j = 0; j < rows; j++) {
                        for (int x = 0; x < d; x++) {
                            wantDst[dstOff + j * d + x] = (float) (src[j * d + x] * inv[j]);
                        }
                    }
                    impl.scaleRows(src, rows, d, inv, dst, dstOff);
                    for (int i = 0; i < dst.length; i++) {
                        assertEquals(Float.floatToIntBits(wantDst[i]), Float.floatToIntBits(dst[i]), where + " row value " + i);
                    }
                }
            }
        }
    }

    /** The running argmax against the plain loop: strictly greater replaces, NaN never does, ties keep the earlier index. */
    @Test
    void runningArgmaxAgrees() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(43);
        for (int n : SIZES) {
            for (boolean specials : new boolean[] {false, true}) {
                int from = rnd.nextInt(4);
                float[] best = values(rnd, n + 2, specials);
                int[] arg = new int[n + 2];
                float[] bs = best.clone();
                float[] bv = best.clone();
                int[] as = arg.clone();
                int[] av = arg.clone();
                for (int row = 1; row < 5; row++) {
                    float[] a = values(rnd, from + n + 1, specials);
                    for (int i = 0; i < n; i++) {
                        if (rnd.nextInt(5) == 0) {
                            a[from + i] = best[i]; // a tie
                        }
                    }
                    for (int i = 0; i < n; i++) { // the definition
                        if (a[from + i] > best[i]) {
                            best[i] = a[from + i];
                            arg[i] = row;
                        }
                    }
                    s.keepGreater(a, from, n, bs, as, row);
                    v.keepGreater(a, from, n, bv, av, row);
                    String where = "n=" + n + " row=" + row;
                    assertArrayEquals(arg, as, "scalar " + where);
                    assertArrayEquals(arg, av, "vector " + where);
                    for (int i = 0; i < best.length; i++) {
                        assertEquals(Float.floatToRawIntBits(best[i]), Float.floatToRawIntBits(bs[i]), "scalar " + where);
                        assertEquals(Float.floatToRawIntBits(best[i]), Float.floatToRawIntBits(bv[i]), "vector " + where);
                    }
                }
            }
        }
    }

    /**
     * The exponential on lanes is CanonicalExp bit for bit: random bit patterns (NaN payloads,
     * subnormals, infinities), the softmax range, the cut-offs at −104 and 89 and every length's tail.
     */
    @Test
    void canonicalExpAgrees() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(26);
        float[] edges = {-104f, Math.nextDown(-104f), Math.nextUp(-104f), 89f, Math.nextUp(89f), Math.nextDown(89f),
            0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.NaN, Float.intBitsToFloat(0xFFC01234),
            Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 88.72284f, -87.33655f, -103.97208f, 0.5f, -0.5f, 1f, -1f};
        for (int rep = 0; rep < 400; rep++) {
            int n = rep < SIZES.length ? SIZES[rep] : rnd.nextInt(0, 300);
            float[] a = new float[n];
            for (int i = 0; i < n; i++) {
                a[i] = switch (rnd.nextInt(5)) {
                    case 0 -> Float.intBitsToFloat(rnd.nextInt()); // any float, NaNs with payloads too
                    case 1 -> edges[rnd.nextInt(edges.length)];
                    case 2 -> (float) (rnd.nextDouble() * 202 - 110);
                    default -> (float) (-rnd.nextDouble() * 30);
                };
            }
            float max = switch (rep % 4) {
                case 0 -> 0f;
                case 1 -> (float) rnd.nextGaussian() * 10;
                case 2 -> edges[rnd.nextInt(edges.length)];
                default -> Float.intBitsToFloat(rnd.nextInt());
            };
            float[] as = a.clone();
            float[] av = a.clone();
            s.expMinus(as, n, max);
            v.expMinus(av, n, max);
            for (int i = 0; i < n; i++) {
                float expect = CanonicalExp.exp(a[i] - max);
                String where = "exp(" + a[i] + " - " + max + ") at " + i + " of " + n;
                assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(as[i]), "scalar " + where);
                assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(av[i]), "vector " + where);
            }
        }
        // 65536 consecutive floats from each of 256 places spread over all bit patterns (signs,
        // exponents, infinities, NaNs), enough calls for the vector loop to be compiled
        float[] all = new float[1 << 16];
        for (int hi = 0; hi < 0x10000; hi += 0x101) {
            for (int lo = 0; lo < all.length; lo++) {
                all[lo] = Float.intBitsToFloat(hi << 16 | lo);
            }
            float[] av = all.clone();
            v.expMinus(av, av.length, 0f);
            for (int lo = 0; lo < all.length; lo++) {
                assertEquals(Float.floatToRawIntBits(CanonicalExp.exp(all[lo])), Float.floatToRawIntBits(av[lo]),
                        "exp(" + all[lo] + ")");
            }
        }
    }

    @Test
    void weightedReluAgrees() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(24);
        for (int n : SIZES) {
            float[] dots = values(rnd, n + 9, true);
            float[] acc = values(rnd, n + 5, true);
            int at = rnd.nextInt(6);
            int from = rnd.nextInt(10); // dots read from their own offset
            int m = Math.min(n, Math.min(acc.length - at, dots.length - from));
            for (float w : new float[] {0.25f, -1.5f, 0f, Float.NaN}) {
                float[] as = acc.clone();
                float[] av = acc.clone();
                s.addWeightedRelu(w, dots, from, as, at, m);
                v.addWeightedRelu(w, dots, from, av, at, m);
                for (int i = 0; i < as.length; i++) {
                    float expect = i >= at && i < at + m ? Math.fma(w, Math.max(0f, dots[from + i - at]), acc[i]) : acc[i];
                    String where = "n=" + m + " at=" + at + " from=" + from + " w=" + w + " i=" + i;
                    assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(as[i]), "scalar " + where);
                    assertEquals(Float.floatToRawIntBits(expect), Float.floatToRawIntBits(av[i]), "vector " + where);
                }
            }
        }
    }

    /**
     * keepBest against its definition: the k best candidates by a full sort (larger score first,
     * then the earlier candidate; -0 equal to +0), listed in candidate order, on ties, signed zeros
     * and infinities.
     */
    @Test
    void keepBestAgreesWithSort() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(24);
        float[] few = {-1f, -0f, 0f, 0.5f, 2f, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY};
        for (int trial = 0; trial < 3000; trial++) {
            int c = 1 + rnd.nextInt(64);
            int k = 1 + rnd.nextInt(c);
            boolean ties = rnd.nextBoolean();
            float[] vals = new float[c + 64];
            int[] idx = new int[c + 64];
            Integer[] order = new Integer[c];
            float min = Float.POSITIVE_INFINITY;
            for (int j = 0; j < c; j++) {
                vals[j] = ties ? few[rnd.nextInt(few.length)] : (float) rnd.nextGaussian();
                idx[j] = 3 * j + rnd.nextInt(3);
                order[j] = j;
                min = Math.min(min, vals[j]);
            }
            java.util.Arrays.sort(order, (x, y) -> vals[x] != vals[y] ? Float.compare(vals[y], vals[x]) : Integer.compare(x, y));
            int[] pos = new int[k];
            for (int j = 0; j < k; j++) {
                pos[j] = order[j];
            }
            java.util.Arrays.sort(pos);
            int[] want = new int[k];
            for (int j = 0; j < k; j++) {
                want[j] = idx[pos[j]];
            }
            for (ScoringSupport impl : new ScoringSupport[] {s, v}) {
                int[] got = new int[k + 2];
                int g = k + rnd.nextInt(c - k + 1);
                float gth = impl.keepBest(vals, idx, c, k, g, got, 1);
                String at = impl.description() + " c=" + c + " k=" + k + " g=" + g + " trial " + trial;
                assertArrayEquals(want, java.util.Arrays.copyOfRange(got, 1, k + 1), at);
                float wantG = vals[order[g - 1]];
                assertTrue(Float.compare(gth, wantG) == 0 || gth == wantG, at + " g-th best " + gth + " want " + wantG);
                if (g == c) {
                    assertTrue(gth == min, at + " smallest " + gth);
                }
            }
        }
    }

    /**
     * The panel transpose against its definition ({@code p[base + x · L + j] = rows[j · d + x]}) and
     * its inverse back to the same rows, raw
     * bits kept (NaN payloads included), nothing outside the panel written, on widths with and
     * without whole 16-channel blocks.
     */
    @Test
    void panelsTransposeAsTheDefinition() {
        SplittableRandom rnd = new SplittableRandom(47);
        for (ScoringSupport impl : new ScoringSupport[] {ScoringProvider.scalar(), vector()}) {
            int lanes = impl.panelLanes();
            for (int d : new int[] {1, 3, 15, 16, 17, 32, 64, 127, 128, 130}) {
                float[] rows = new float[lanes * d];
                for (int i = 0; i < rows.length; i++) {
                    rows[i] = Float.intBitsToFloat(rnd.nextInt()); // any bits, NaN payloads included
                }
                int base = rnd.nextInt(7);
                float[] p = new float[base + lanes * d + 5];
                java.util.Arrays.fill(p, -7f);
                impl.transposePanel(rows, d, p, base);
                for (int i = 0; i < p.length; i++) {
                    int k = i - base;
                    int want = k < 0 || k >= lanes * d ? Float.floatToRawIntBits(-7f)
                            : Float.floatToRawIntBits(rows[(k % lanes) * d + k / lanes]);
                    assertEquals(want, Float.floatToRawIntBits(p[i]), impl.description() + " d=" + d + " i=" + i);
                }
                // and back: rows[at + j · d + x] = p[base + x · L + j], nothing else written
                int at = rnd.nextInt(7);
                float[] back = new float[at + lanes * d + 5];
                java.util.Arrays.fill(back, -9f);
                impl.untransposePanel(p, base, d, back, at);
                for (int i = 0; i < back.length; i++) {
                    int k = i - at;
                    int want = k < 0 || k >= lanes * d ? Float.floatToRawIntBits(-9f) : Float.floatToRawIntBits(rows[k]);
                    assertEquals(want, Float.floatToRawIntBits(back[i]), impl.description() + " back d=" + d + " i=" + i);
                }
            }
        }
    }

    /**
     * The four-query × four-panel kernel against the four × two one it stands in for, bit for bit
     * (every lane the same chain of fused multiply-adds), on panels that hold repeated key rows,
     * queries that repeat, signed zeros and specials (ties everywhere), at an offset panel and with a
     * stride; and against the plain {@link Vectors#dot} of each score.
     */
    @Test
    void fourByFourEqualsFourByTwo() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(31);
        for (int d : new int[] {1, 2, 5, 16, 64, 128}) {
            for (boolean specials : new boolean[] {false, true}) {
                for (ScoringSupport impl : new ScoringSupport[] {s, v}) {
                    int lanes = impl.panelLanes();
                    int panelsN = 6; // kernels at panel 1: panels 1..4 scored, 0 and 5 are neighbours
                    float[] rows = values(rnd, panelsN * lanes * d, specials);
                    for (int r = 0; r < panelsN * lanes; r++) {
                        if (rnd.nextInt(3) == 0) { // a copy of an earlier row: tied scores
                            int from = rnd.nextInt(r + 1);
                            System.arraycopy(rows, from * d, rows, r * d, d);
                        }
                    }
                    float[] panels = new float[panelsN * lanes * d];
                    for (int p = 0; p < panelsN; p++) {
                        float[] one = java.util.Arrays.copyOfRange(rows, p * lanes * d, (p + 1) * lanes * d);
                        impl.transposePanel(one, d, panels, p * lanes * d);
                    }
                    float[] q = values(rnd, 6 * d, specials);
                    System.arraycopy(q, 1 * d, q, 3 * d, d); // query 2 (from row 1) repeats query 0
                    int stride = panelsN * lanes + 5;
                    float[] quad = new float[4 * stride];
                    float[] pairs = new float[4 * stride];
                    java.util.Arrays.fill(quad, -7f);
                    java.util.Arrays.fill(pairs, -7f);
                    impl.fourByFour(panels, d, q, 1, 1, quad, 2, stride);
                    impl.fourByTwo(panels, d, q, 1, 1, pairs, 2, stride);
                    impl.fourByTwo(panels, d, q, 1, 3, pairs, 2, stride);
                    for (int i = 0; i < quad.length; i++) {
                        assertEquals(Float.floatToRawIntBits(pairs[i]), Float.floatToRawIntBits(quad[i]),
                                impl.description() + " d=" + d + " at " + i);
                    }
                    for (int j = 0; j < 4; j++) {
                        for (int key = 0; key < panelsN * lanes; key++) {
                            float got = quad[2 + j * stride + key];
                            if (key < lanes || key >= 5 * lanes) {
                                assertEquals(-7f, got, "outside the four panels");
                            } else {
                                assertEquals(Vectors.dot(q, 1 + j, rows, key, d), got,
                                        impl.description() + " d=" + d + " query " + j + " key " + key);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void panelScoresAgree() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(22);
        for (int d : new int[] {1, 3, 8, 17, 64}) {
            for (ScoringSupport impl : new ScoringSupport[] {s, v}) {
                int lanes = impl.panelLanes();
                float[] rows = values(rnd, lanes * d, false);
                float[] panels = new float[2 * lanes * d];
                impl.transposePanel(rows, d, panels, 0);
                impl.transposePanel(rows, d, panels, lanes * d);
                float[] q = values(rnd, 8 * d, false);
                float[] four = new float[4 * 2 * lanes];
                impl.fourByTwo(panels, d, q, 0, 0, four, 0, 2 * lanes);
                // eight queries against the second panel, written at panel 1's offset with a stride
                float[] eight = new float[8 * (2 * lanes + 3)];
                impl.eightByOne(panels, d, q, 0, 1, eight, 0, 2 * lanes + 3);
                for (int j = 0; j < 8; j++) {
                    for (int key = 0; key < lanes; key++) {
                        assertEquals(Vectors.dot(q, j, rows, key, d), eight[j * (2 * lanes + 3) + lanes + key],
                                impl.description() + " eightByOne d=" + d + " query " + j + " key " + key);
                    }
                }
                float[] one = new float[2 * lanes];
                for (int j = 0; j < 4; j++) {
                    impl.oneByTwo(panels, d, q, j, 0, one, 0);
                    float[] single = new float[lanes];
                    impl.oneByOne(panels, d, q, j, 0, single, 0);
                    for (int key = 0; key < lanes; key++) {
                        float dot = Vectors.dot(q, j, rows, key, d);
                        String at = impl.description() + " d=" + d + " query " + j + " key " + key;
                        assertEquals(dot, four[j * 2 * lanes + key], at);
                        assertEquals(dot, four[j * 2 * lanes + lanes + key], at);
                        assertEquals(dot, one[key], at);
                        assertEquals(dot, one[lanes + key], at);
                        assertEquals(dot, single[key], at);
                    }
                }
            }
        }
    }

    /**
     * Quest's bound kernels, both implementations, against the plain loop {@code s += Math.max(qc·min,
     * qc·max)} per page, bit for bit: four rows at once, one row, at an offset panel with a stride, with
     * NaN, ±∞ and signed zeros among the queries and bounds.
     */
    @Test
    void boundKernelsAreThePlainLoop() {
        vector();
        SplittableRandom rnd = new SplittableRandom(37);
        for (int d : new int[] {1, 3, 16, 40, 128}) {
            for (boolean specials : new boolean[] {false, true}) {
                for (ScoringSupport impl : new ScoringSupport[] {ScoringProvider.scalar(), ScoringProvider.vector()}) {
                    int lanes = impl.panelLanes();
                    int pages = 2 * lanes;
                    float[] lo = values(rnd, pages * d, specials);
                    float[] hi = values(rnd, pages * d, specials);
                    float[] minRows = new float[pages * d];
                    float[] maxRows = new float[pages * d];
                    for (int i = 0; i < minRows.length; i++) {
                        minRows[i] = Math.min(lo[i], hi[i]);
                        maxRows[i] = Math.max(lo[i], hi[i]);
                    }
                    float[] minPanels = new float[pages * d];
                    float[] maxPanels = new float[pages * d];
                    for (int p = 0; p < 2; p++) {
                        impl.transposePanel(java.util.Arrays.copyOfRange(minRows, p * lanes * d, (p + 1) * lanes * d), d,
                                minPanels, p * lanes * d);
                        impl.transposePanel(java.util.Arrays.copyOfRange(maxRows, p * lanes * d, (p + 1) * lanes * d), d,
                                maxPanels, p * lanes * d);
                    }
                    float[] q = values(rnd, 5 * d, specials);
                    int stride = pages + 3;
                    float[] four = new float[4 * stride + 1];
                    impl.boundsFourByOne(minPanels, maxPanels, d, q, 1, 1, four, 1, stride);
                    float[] one = new float[pages];
                    impl.boundsOneByOne(minPanels, maxPanels, d, q, 4, 0, one, 0);
                    for (int page = 0; page < pages; page++) {
                        for (int j = 0; j < 5; j++) {
                            float plain = 0f;
                            for (int x = 0; x < d; x++) {
                                float qc = q[j * d + x];
                                plain += Math.max(qc * minRows[page * d + x], qc * maxRows[page * d + x]);
                            }
                            String at = impl.description() + " d=" + d + " specials=" + specials + " row " + j
                                    + " page " + page;
                            if (j >= 1 && j <= 4 && page >= lanes) {
                                assertEquals(Float.floatToIntBits(plain),
                                        Float.floatToIntBits(four[1 + (j - 1) * stride + page]), at);
                            }
                            if (j == 4 && page < lanes) {
                                assertEquals(Float.floatToIntBits(plain), Float.floatToIntBits(one[page]), at);
                            }
                        }
                    }
                }
            }
        }
    }

    @Test
    void hashBytesAgree() {
        ScoringSupport v = vector();
        ScoringSupport s = ScoringProvider.scalar();
        SplittableRandom rnd = new SplittableRandom(23);
        for (int dim : new int[] {1, 5, 16, 33}) {
            float[] rows = values(rnd, 8 * dim, true);
            float[] dirT = values(rnd, 8 * dim, false);
            float[] pair = values(rnd, 16 * dim, false);
            int[] a0 = new int[8];
            int[] a1 = new int[8];
            int[] b0 = new int[8];
            int[] b1 = new int[8];
            s.hashSixRows(rows, 0, dim, pair, a0, 3, a1, 11, 1);
            v.hashSixRows(rows, 0, dim, pair, b0, 3, b1, 11, 1);
            assertArrayEquals(a0, b0, "six rows, first group, dim " + dim);
            assertArrayEquals(a1, b1, "six rows, second group, dim " + dim);
            int[] e0 = new int[8];
            int[] e1 = new int[8];
            s.hashEightRows(rows, 0, dim, dirT, e0, 5, 0);
            v.hashEightRows(rows, 0, dim, dirT, e1, 5, 0);
            assertArrayEquals(e0, e1, "eight rows, dim " + dim);
            for (int r = 0; r < 8; r++) {
                assertEquals(s.hashOneRow(rows, r * dim, dim, dirT), v.hashOneRow(rows, r * dim, dim, dirT),
                        "row " + r + " dim " + dim);
                assertEquals(e0[r] >>> 5, s.hashOneRow(rows, r * dim, dim, dirT), "eight rows = one row, row " + r);
            }
        }
    }
}
