package dev.sparsa.plan;

/**
 * The element mask of a plan's partial blocks and gathered keys: a small parametric set that a GPU
 * evaluates from a handful of integers. Positions are absolute: {@code qPos = qIndex + queryOffset},
 * {@code δ = qPos − kPos}. A pair is admitted when
 *
 * <pre>
 *   causalOk  and  ( kPos &lt; sinks  or  ( inBand and onStride and inNeighbourhood ) )
 * </pre>
 *
 * <ul>
 *   <li>{@code causalOk}: {@code δ ≥ 0} when {@code causal}, else true. Sinks never break causality.
 *   <li>{@code inBand}: {@code bandLo ≤ δ ≤ bandHi} (one- and two-sided windows); with no band, true.
 *   <li>{@code onStride}: {@code (δ mod m) == r} or, with {@code strideOnKey}, {@code (kPos mod m)
 *       == r}; with {@code m == 0}, true. The modulus is the floor modulus.
 *   <li>{@code inNeighbourhood}: with size {@code w > 0}, {@code start ≤ kPos < start + w} where
 *       {@code start = clamp(qPos − w/2, 0, keyLength − w)} (the window shifts at the edges so that
 *       every query sees exactly {@code w} keys when {@code keyLength ≥ w}); with {@code w == 0}, true.
 *   <li>{@code kPos < sinks}: attention sinks, or-ed with the rest (0 means none).
 * </ul>
 *
 * Anything outside this set is expressed with listed rows and gathered keys instead.
 *
 * <p>Throws {@link IllegalArgumentException} for an empty band, a negative sink count, a stride modulus
 *     {@code < 0} or a residue outside {@code [0, m)}, or a negative neighbourhood size
 */
public record ElementPredicate(boolean causal, int bandLo, int bandHi, int sinks, int strideModulus,
                               int strideResidue, boolean strideOnKey, int neighbourhood) {
    /** {@code bandLo} meaning "no lower bound". */
    public static final int NO_LOWER = Integer.MIN_VALUE;
    /** {@code bandHi} meaning "no upper bound". */
    public static final int NO_UPPER = Integer.MAX_VALUE;

    private static final ElementPredicate ALL = new ElementPredicate(false, NO_LOWER, NO_UPPER, 0, 0, 0, false, 0);

    public ElementPredicate {
        if (bandLo > bandHi) {
            throw new IllegalArgumentException("band: lo (" + bandLo + ") must be <= hi (" + bandHi + ")");
        }
        if (sinks < 0) {
            throw new IllegalArgumentException("sinks: must be >= 0, got " + sinks);
        }
        if (strideModulus < 0 || (strideModulus > 0 && (strideResidue < 0 || strideResidue >= strideModulus))
                || (strideModulus == 0 && strideResidue != 0)) {
            throw new IllegalArgumentException("stride: need modulus >= 0 and residue in [0, modulus), got modulus "
                    + strideModulus + " residue " + strideResidue);
        }
        if (neighbourhood < 0) {
            throw new IllegalArgumentException("neighbourhood: size must be >= 0, got " + neighbourhood);
        }
    }

    /** Admits every pair. */
    public static ElementPredicate all() {
        return ALL;
    }

    /** Admits {@code δ ≥ 0}. */
    public static ElementPredicate causalOnly() {
        return ALL.withCausal(true);
    }

    public ElementPredicate withCausal(boolean c) {
        return new ElementPredicate(c, bandLo, bandHi, sinks, strideModulus, strideResidue, strideOnKey, neighbourhood);
    }

    /** Intersects the band with {@code [lo, hi]} (on δ). */
    public ElementPredicate withBand(int lo, int hi) {
        return new ElementPredicate(causal, Math.max(lo, bandLo), Math.min(hi, bandHi), sinks, strideModulus,
                strideResidue, strideOnKey, neighbourhood);
    }

    /** Also admits keys {@code kPos < s} (still causal when causal). */
    public ElementPredicate withSinks(int s) {
        return new ElementPredicate(causal, bandLo, bandHi, s, strideModulus, strideResidue, strideOnKey, neighbourhood);
    }

    /** Keeps pairs with {@code (δ or kPos) mod m == r}. */
    public ElementPredicate withStride(int m, int r, boolean onKey) {
        return new ElementPredicate(causal, bandLo, bandHi, sinks, m, r, onKey, neighbourhood);
    }

    /** Keeps the clamped neighbourhood of {@code w} keys around each query. */
    public ElementPredicate withNeighbourhood(int w) {
        return new ElementPredicate(causal, bandLo, bandHi, sinks, strideModulus, strideResidue, strideOnKey, w);
    }

    /** True when the band bounds δ on either side. */
    public boolean banded() {
        return bandLo != NO_LOWER || bandHi != NO_UPPER;
    }

    /** True when this predicate admits every pair with no further test beyond causality. */
    public boolean onlyCausal() {
        return !banded() && strideModulus == 0 && neighbourhood == 0;
    }

    /** First key of the clamped neighbourhood of {@code qPos}. */
    public long neighbourhoodStart(long qPos, int keyLength) {
        long start = qPos - neighbourhood / 2;
        return Math.max(0, Math.min(start, (long) keyLength - neighbourhood));
    }

    /** Whether the pair (qPos, kPos) is admitted, for a key sequence of {@code keyLength}. */
    public boolean admits(long qPos, int kPos, int keyLength) {
        long delta = qPos - kPos;
        if (causal && delta < 0) {
            return false;
        }
        if (kPos < sinks) {
            return true;
        }
        if (delta < bandLo || delta > bandHi) {
            return false;
        }
        if (strideModulus > 0) {
            long x = strideOnKey ? kPos : delta;
            if (Math.floorMod(x, (long) strideModulus) != strideResidue) {
                return false;
            }
        }
        if (neighbourhood > 0) {
            long start = neighbourhoodStart(qPos, keyLength);
            return kPos >= start && kPos < start + neighbourhood;
        }
        return true;
    }

    /**
     * The number of keys {@code k} in {@code [kLo, kHi]} with {@code admits(qPos, k, keyLength)},
     * computed from the predicate's intervals and residues in O(1) (planning counts admitted pairs
     * this way instead of testing every element of a partial block).
     */
    public long countAdmittedKeys(long qPos, long kLo, long kHi, int keyLength) {
        long lo = Math.max(kLo, 0);
        long hi = Math.min(kHi, (long) keyLength - 1);
        if (causal) {
            hi = Math.min(hi, qPos);
        }
        if (lo > hi) {
            return 0;
        }
        long total = 0;
        if (sinks > 0) {
            long sinkHi = Math.min(hi, (long) sinks - 1);
            if (sinkHi >= lo) {
                total += sinkHi - lo + 1;
            }
            lo = Math.max(lo, sinks);
        }
        if (bandHi != NO_UPPER) {
            lo = Math.max(lo, qPos - bandHi);
        }
        if (bandLo != NO_LOWER) {
            hi = Math.min(hi, qPos - bandLo);
        }
        if (neighbourhood > 0) {
            long start = neighbourhoodStart(qPos, keyLength);
            lo = Math.max(lo, start);
            hi = Math.min(hi, start + neighbourhood - 1);
        }
        if (lo > hi) {
            return total;
        }
        if (strideModulus > 0) {
            // on δ: (qPos − k) mod m == r  ⇔  k ≡ qPos − r (mod m)
            long residue = strideOnKey ? strideResidue : Math.floorMod(qPos - strideResidue, (long) strideModulus);
            return total + countResidue(lo, hi, strideModulus, residue);
        }
        return total + hi - lo + 1;
    }

    /**
     * The number of query positions {@code q} in {@code [qLo, qHi]} with {@code admits(q, kPos,
     * keyLength)}: O(1) without a neighbourhood, one test per position with one (its clamped start
     * makes the row set an interval that is cheaper to scan than to invert).
     */
    public long countAdmittedQueries(long qLo, long qHi, int kPos, int keyLength) {
        if (neighbourhood > 0) {
            long n = 0;
            for (long q = qLo; q <= qHi; q++) {
                n += admits(q, kPos, keyLength) ? 1 : 0;
            }
            return n;
        }
        long lo = qLo;
        long hi = qHi;
        if (causal) {
            lo = Math.max(lo, kPos);
        }
        if (lo > hi || kPos < 0 || kPos >= keyLength) {
            return 0;
        }
        if (kPos < sinks) {
            return hi - lo + 1;
        }
        if (bandLo != NO_LOWER) {
            lo = Math.max(lo, (long) kPos + bandLo);
        }
        if (bandHi != NO_UPPER) {
            hi = Math.min(hi, (long) kPos + bandHi);
        }
        if (lo > hi) {
            return 0;
        }
        if (strideModulus > 0) {
            if (strideOnKey) {
                return Math.floorMod(kPos, strideModulus) == strideResidue ? hi - lo + 1 : 0;
            }
            // (q − kPos) mod m == r  ⇔  q ≡ kPos + r (mod m)
            return countResidue(lo, hi, strideModulus, Math.floorMod((long) kPos + strideResidue, (long) strideModulus));
        }
        return hi - lo + 1;
    }

    /** How many x in [lo, hi] have x mod m == r (floor modulus, 0 ≤ r < m). */
    private static long countResidue(long lo, long hi, long m, long r) {
        return Math.floorDiv(hi - r, m) - Math.floorDiv(lo - 1 - r, m);
    }

    /**
     * Classifies the rectangle of absolute query positions {@code [qLo, qHi]} by keys {@code [kLo,
     * kHi]} (both inclusive). {@code FULL} and {@code EMPTY} are exact claims; {@code PARTIAL} may be
     * returned for a rectangle that is in fact full or empty (striding is not analysed), which costs
     * work but never changes the result.
     */
    public BlockClass classify(long qLo, long qHi, int kLo, int kHi, int keyLength) {
        long dMin = qLo - kHi;
        long dMax = qHi - kLo;
        BlockClass causalClass = !causal ? BlockClass.FULL
                : dMin >= 0 ? BlockClass.FULL : dMax < 0 ? BlockClass.EMPTY : BlockClass.PARTIAL;
        if (causalClass == BlockClass.EMPTY) {
            return BlockClass.EMPTY;
        }
        BlockClass rest = BlockClass.FULL;
        if (banded()) {
            rest = dMax < bandLo || dMin > bandHi ? BlockClass.EMPTY
                    : dMin >= bandLo && dMax <= bandHi ? BlockClass.FULL : BlockClass.PARTIAL;
        }
        if (strideModulus > 1) {
            BlockClass s = BlockClass.PARTIAL;
            if (strideOnKey) {
                long first = kLo + Math.floorMod(strideResidue - kLo, strideModulus);
                if (first > kHi) {
                    s = BlockClass.EMPTY;
                }
            } else {
                long first = dMin + Math.floorMod(strideResidue - dMin, (long) strideModulus);
                if (first > dMax) {
                    s = BlockClass.EMPTY;
                }
            }
            rest = rest.and(s);
        }
        if (neighbourhood > 0) {
            long startLo = neighbourhoodStart(qLo, keyLength);
            long startHi = neighbourhoodStart(qHi, keyLength);
            BlockClass n = startHi + neighbourhood - 1 < kLo || startLo > kHi ? BlockClass.EMPTY
                    : startHi <= kLo && startLo + neighbourhood - 1 >= kHi ? BlockClass.FULL : BlockClass.PARTIAL;
            rest = rest.and(n);
        }
        if (sinks > 0) {
            BlockClass s = kHi < sinks ? BlockClass.FULL : kLo >= sinks ? BlockClass.EMPTY : BlockClass.PARTIAL;
            rest = rest.or(s);
        }
        return causalClass.and(rest);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(causal ? "causal" : "all");
        if (banded()) {
            sb.append(" band[").append(bandLo == NO_LOWER ? "-inf" : bandLo).append(", ")
                    .append(bandHi == NO_UPPER ? "inf" : bandHi).append(']');
        }
        if (strideModulus > 0) {
            sb.append(strideOnKey ? " kPos" : " delta").append(" mod ").append(strideModulus).append(" == ").append(strideResidue);
        }
        if (neighbourhood > 0) {
            sb.append(" neighbourhood ").append(neighbourhood);
        }
        if (sinks > 0) {
            sb.append(" | sinks ").append(sinks);
        }
        return sb.toString();
    }
}
