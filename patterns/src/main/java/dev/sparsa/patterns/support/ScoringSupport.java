package dev.sparsa.patterns.support;

/**
 * The loops estimators run over many scores, behind one interface with two implementations: plain
 * Java ({@link ScalarScoringSupport}) and the Vector API ({@code
 * dev.sparsa.patterns.support.panama.PanamaScoringSupport}), chosen once per JVM by {@link
 * ScoringProvider}. Both give bitwise the same results (every dot product is one chain of fused
 * multiply-adds over the channels in order; scans compare, count and pick, they do not add; sums,
 * norms and scalings run one lane per element or row, in the plain loop's order of operations;
 * transposes only move values), so a selection never depends on which one ran.
 *
 * <p>Panels: {@link KeyPanels} stores keys in groups of {@link #panelLanes()} keys, channel-major
 * inside a group ({@code panel[x · L + j]} is channel {@code x} of key {@code j} of the group).
 * Hash groups: {@link dev.sparsa.patterns.lsh.AngularLsh} stores eight directions channel-major
 * ({@code dirT[x · 8 + lane]}), or two such groups interleaved ({@code pair[x · 16 + lane]}).
 */
public interface ScoringSupport {

    /** One line naming the implementation, for logs. */
    String description();

    /** Keys per panel of {@link KeyPanels}. */
    int panelLanes();

    // ---------------------------------------------------------------- key panels

    /** Channel {@code x} of {@link #panelLanes()} rows {@code rows[j · d + x]} to {@code p[base + x · L + j]}. */
    void transposePanel(float[] rows, int d, float[] p, int base);

    /** The inverse of {@link #transposePanel}: {@code rows[at + j · d + x] = p[base + x · L + j]}. */
    void untransposePanel(float[] p, int base, int d, float[] rows, int at);

    /**
     * Scales each of the {@link #panelLanes()} rows of the panel at {@code p[base ..]} ({@code d}
     * channels) to unit length in place, as {@code SphericalKMeans.normalizeInPlace} scales a row:
     * lane {@code j}'s sum of squares in double in channel order ({@code s += (double) v · v}, no
     * fused multiply-add), then each value times {@code inv = 1/sqrt(s)} in double rounded to f32
     * ({@code inv = 0} when {@code s} is not above 0, so a zero lane stays zero); {@code inv[j]}
     * receives each lane's factor. Bitwise the plain loop.
     */
    void normalizePanel(float[] p, int base, int d, double[] inv);

    /**
     * {@code dst[dstOff + j · d + x] = (float) (src[j · d + x] · inv[j])} for {@code j < rows} and
     * {@code x < d} (the product in double, rounded to f32): rows scaled by the factors {@link
     * #normalizePanel} returned. Bitwise the plain loop.
     */
    void scaleRows(float[] src, int rows, int d, double[] inv, float[] dst, int dstOff);

    /**
     * Scores of four consecutive query rows from {@code row} against panels {@code g} and {@code g +
     * 1}: {@code out[outBase + j · stride + g · L + i]} for query {@code j < 4} and key {@code i < 2L}.
     */
    void fourByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride);

    /**
     * Scores of four consecutive query rows from {@code row} against panels {@code g} to {@code g +
     * 3}: {@code out[outBase + j · stride + g · L + i]} for query {@code j < 4} and key {@code i <
     * 4L}, each score the same chain of fused multiply-adds as {@link #oneByOne}: sixteen chains in
     * flight for eight vector loads (four panel vectors, four broadcasts) per channel, where {@link
     * #fourByTwo} needs six loads for eight chains.
     */
    void fourByFour(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride);

    /** Scores of one query row against panels {@code g} and {@code g + 1} to {@code out[outBase + g · L ..]}. */
    void oneByTwo(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase);

    /**
     * Scores of eight consecutive query rows from {@code row} against panel {@code g}: {@code
     * out[outBase + j · stride + g · L + i]} for query {@code j < 8} and key {@code i < L} (eight
     * chains in flight where a single panel is left).
     */
    void eightByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase, int stride);

    /** Scores of one query row against panel {@code g} to {@code out[outBase + g · L ..]}. */
    void oneByOne(float[] panels, int d, float[] q, int row, int g, float[] out, int outBase);

    /**
     * Quest's page bounds of four consecutive query rows from {@code row} against bound panel {@code g}
     * ({@link #panelLanes()} pages channel-major, as {@link KeyPanels}: {@code min[g·L·d + x·L + i]},
     * {@code max} alike): {@code out[outBase + j · stride + g · L + i] = Σ_x max(q_x·min_x, q_x·max_x)}
     * for query {@code j < 4}, summed from 0 in channel order with every product, maximum and sum
     * rounded to f32, as the plain loop {@code s += Math.max(qc * mn, qc * mx)} (no fused multiply-add).
     */
    void boundsFourByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase,
                         int stride);

    /** {@link #boundsFourByOne} for one query row, to {@code out[outBase + g · L ..]}. */
    void boundsOneByOne(float[] min, float[] max, int d, float[] q, int row, int g, float[] out, int outBase);

    /**
     * {@code acc[accAt + i] = fma(w, max(0, dots[dotsAt + i]), acc[accAt + i])} for {@code i < n} (a
     * weighted ReLU added to a running sum, {@link Math#fma} and {@link Math#max} per element; NaN
     * stays NaN).
     */
    void addWeightedRelu(float w, float[] dots, int dotsAt, float[] acc, int accAt, int n);

    /**
     * Adds {@code rows} rows of {@code d} to a running sum, one row after another: for each {@code x
     * < d}, {@code dst[dstOff + x] += src[srcOff + r · d + x]} for {@code r = 0, 1, …, rows − 1} in
     * that order (f32 additions, so bitwise the plain loop; a NaN sum is NaN, its sign bit not
     * specified).
     */
    void addRows(float[] src, int srcOff, int rows, int d, float[] dst, int dstOff);

    /**
     * {@code a[i] = CanonicalExp.exp(a[i] − max)} for {@code i < n} (the subtraction in f32), bit for
     * bit {@link CanonicalExp#exp} on every input, NaN payloads included.
     */
    void expMinus(float[] a, int n, float max);

    // ---------------------------------------------------------------- angular hashes (8 directions per group)

    /**
     * Six rows from {@code r} against two interleaved groups: {@code out0[at + r + i] |= byte << shift0}
     * and the same for the second group, bit {@code lane} set when the projection is {@code > 0}.
     */
    void hashSixRows(float[] rows, int r, int dim, float[] pair, int[] out0, int shift0, int[] out1, int shift1, int at);

    /** Eight rows from {@code r} against one group: {@code out[at + r + i] |= byte << shift}. */
    void hashEightRows(float[] rows, int r, int dim, float[] dirT, int[] out, int shift, int at);

    /** The byte of one group's hash of the row at {@code rows[off, off + dim)}. */
    int hashOneRow(float[] rows, int off, int dim, float[] dirT);

    // ---------------------------------------------------------------- scans over a[from, from + n)

    /** The largest value that is not NaN ({@code −∞} if none). */
    float maxSkippingNaN(float[] a, int from, int n);

    /** The largest value, or NaN if some value is not finite (NaN or ±∞). */
    float maxIfFinite(float[] a, int from, int n);

    /** The smallest and largest non-NaN values and how many are not NaN ({@code +∞}, {@code −∞}, 0 if none). */
    Vectors.Range range(float[] a, int from, int n);

    /**
     * A running argmax over rows of scores: for {@code i < n}, where {@code a[from + i] > best[i]}
     * (NaN never is), {@code best[i] = a[from + i]} and {@code arg[i] = index}; other entries are
     * left as they are (ties keep the earlier index).
     */
    void keepGreater(float[] a, int from, int n, float[] best, int[] arg, int index);

    /** How many are {@code >= t} (NaN never is). */
    int countAtLeast(float[] a, int from, int n, float t);

    /**
     * The scores {@code >= t} (NaN never is) with their indices, ascending: {@code vals[m] =
     * a[from + i]}, {@code idx[m] = i}; returns how many. Both arrays need room for {@code n} plus
     * {@link #panelLanes()} entries (whole vectors are stored; entries past the count are undefined).
     */
    int compressAtLeast(float[] a, int from, int n, float t, float[] vals, int[] idx);

    /**
     * Of {@code c} candidates ({@code k <= c <= 64}), scores {@code vals[0, c)} (none NaN) and their
     * indices {@code idx[0, c)}, writes to {@code out[at, at + k)} the indices of the {@code k} best
     * (larger score first, ties to the earlier candidate, {@code -0} equal to {@code +0}) in
     * candidate order, and returns the {@code g}-th best score ({@code k <= g <= c}; {@code g = c}:
     * the smallest). Both arrays need room for {@code c} rounded up to {@link #panelLanes()}.
     */
    float keepBest(float[] vals, int[] idx, int c, int k, int g, int[] out, int at);

    /** Sets bit {@code i} of {@code bits} for each {@code a[from + i] >= t}; the bits of {@code [0, n)} are overwritten. */
    void bitsAtLeast(float[] a, int from, int n, float t, long[] bits);

    /**
     * Sets bit {@code i} of {@code above} for each {@code a[from + i] >= hi} (bits of {@code [0, n)}
     * overwritten), writes the indices with {@code lo <= a[from + i] < hi} to {@code inside} in
     * ascending order and returns how many.
     */
    int split(float[] a, int from, int n, float lo, float hi, long[] above, int[] inside);
}
