package dev.sparsa.cpu;

/**
 * The arithmetic of one query tile against one chunk of keys, in f32, on scratch arrays laid out by
 * the CPU backend's tile runner: the seam between the kernel and its two flavours (plain Java, and
 * the Vector API in {@code dev.sparsa.cpu.panama}). Public only so that the Vector API flavour, kept
 * in its own package and compiled apart, can implement it; applications use {@link CpuBackend}.
 *
 * <p>Implementations differ only in how they compute (plain loops or Vector API); for a given
 * implementation the result of every row depends only on that row's data and on whether its tile
 * takes the {@linkplain #narrow narrow} score form (a property of the plan and the head stacking,
 * never of the thread count), never on its position in the tile, so any split of the work gives
 * bitwise the same numbers.
 *
 * <p>Layouts (all row-major, leading dimensions in elements, every {@code ld} a multiple of {@link
 * #lanes()}):
 * <ul>
 *   <li>{@code qT[d·ldQ + r]}: the tile's queries, transposed and already multiplied by the scale;
 *   <li>{@code k[kOff[j] + d]}: the chunk's keys in f32 (rows in a scratch copy, or in place in
 *       the caller's f32 array);
 *   <li>{@code s[j·ldS + r]}: scores, then probabilities, transposed (key-major, rows along lanes);
 *   <li>{@code v[vOff[j] + c]}: the chunk's values in f32, likewise;
 *   <li>{@code o[r·ldO + c]}: the running (unnormalised) output of each row;
 *   <li>{@code m, l, alpha}: per row: running max, running sum, and the rescale factor of the last
 *       softmax step.
 * </ul>
 */
public interface TileMath {

    /**
     * The system property that forces the vector width in bits (128, 256 or 512); read by the
     * vector arithmetic when it is first loaded.
     */
    String VECTOR_BITS_PROPERTY = "sparsa.cpu.vectorBits";

    /** Which flavour this is. */
    KernelFlavour flavour();

    /** One line naming the implementation and its vector width, for logs and benchmarks. */
    String description();

    /** The padding unit of rows and value columns (1 for scalar code, the f32 lane count otherwise). */
    int lanes();

    /** {@code s[j][r] = Σ_d k[j][d]·qT[d][r]} for keys {@code j < n} and rows {@code r < rowsPad}. */
    void scores(float[] qT, int ldQ, int rowsPad, float[] k, int[] kOff, int dim, int n, float[] s, int ldS);

    /**
     * The narrow form of {@link #scores}, for tiles of a few stacked rows (one query's heads against
     * its own gathered keys, FlashMLA's packing), where rows along lanes would compute mostly
     * padding: scores <em>row-major</em>, {@code s[r·ldR + j] = Σ_d k[j][d]·q[r·dim + d]} for rows
     * {@code r < rows} and keys {@code j < n}, with {@code q} row-major (already scaled): dot
     * products along the head dimension.
     */
    void scoresByRow(float[] q, int rows, float[] k, int[] kOff, int dim, int n, float[] s, int ldR);

    /**
     * {@link #softmax} on row-major scores {@code s[r·ldR + j]} ({@link #scoresByRow}), vectorised
     * along the keys: for rows {@code r < rows}, the same step and the same rules (a row that has
     * admitted nothing yet gets probabilities 0 and alpha 0, never NaN).
     */
    default void softmaxByRow(float[] s, int ldR, int n, int rows, float[] m, float[] l, float[] alpha) {
        RowSoftmax.step(s, ldR, rows, n, m, l, alpha);
    }

    /**
     * Whether a tile of {@code rows} stacked rows takes the narrow form ({@link #scoresByRow}, {@link
     * #softmaxByRow}): when at most half the lanes would hold a row. Never for the scalar flavour.
     */
    default boolean narrow(int rows) {
        return 2 * rows <= lanes() && lanes() > 1;
    }

    /** {@code s = cap·tanh(s/cap)} on keys {@code j < n}, rows {@code r < rowsPad}. */
    void softCap(float[] s, int ldS, int n, int rowsPad, float cap);

    /** {@code s[j][r] += bias[j]} (per-key log-weights). */
    void addKeyBias(float[] s, int ldS, int n, int rowsPad, float[] bias);

    /**
     * {@code s[at + i] = −∞} for every set bit {@code i} of {@code refused} ({@code i < lanes()}; the
     * {@link #lanes()} entries from {@code at} lie in {@code s}).
     */
    default void refuseRows(float[] s, int at, long refused) {
        for (long bits = refused; bits != 0; bits &= bits - 1) {
            s[at + Long.numberOfTrailingZeros(bits)] = Float.NEGATIVE_INFINITY;
        }
    }

    /**
     * One online-softmax step over {@code n} keys: new max {@code m' = max(m, max_j s)}, {@code s ←
     * exp(s − m')}, {@code alpha = exp(m − m')}, {@code l ← l·alpha + Σ_j s}. A row whose max stays
     * −∞ (nothing admitted yet) gets probabilities 0 and alpha 0, never NaN.
     */
    void softmax(float[] s, int ldS, int n, int rowsPad, float[] m, float[] l, float[] alpha);

    /**
     * {@code o[r][c] = alpha[r]·o[r][c] + Σ_{j<n} p[j][r]·v[j][c]} for rows {@code r < rows} and
     * columns {@code c < cols} ({@code cols} a multiple of {@link #lanes()}). With {@code fresh} (the
     * tile's first chunk) {@code o} is not read: {@code o[r][c] = Σ_{j<n} p[j][r]·v[j][c]}, the same
     * bits as {@code alpha·o} with {@code o = 0} and the first chunk's {@code alpha = 0}. With
     * {@code dst} non-null (the tile's last chunk, {@code l} final) each row is instead divided by its
     * sum and written to {@code dst[dstAt[r] + c]}, the bits of {@link #normalise}, and {@code o} is
     * left unspecified.
     */
    void accumulate(float[] p, int ldS, int n, int rows, float[] v, int[] vOff, int cols, float[] o, int ldO,
                    float[] alpha, boolean fresh, float[] dst, int[] dstAt, float[] l);

    /**
     * Transposes and scales a tile's queries: {@code qT[d·rowsPad + r] = src[rowAt[r] + d]·scale} for
     * rows {@code r < rows} and {@code d < dim}, and 0 for the padding rows {@code rows ≤ r < rowsPad}
     * (the layout of {@link #scores}). The same products as a scalar loop, so bitwise the same.
     */
    default void transposeScaled(float[] src, int[] rowAt, int rows, int rowsPad, int dim, float scale,
                                 float[] qT) {
        for (int r = 0; r < rows; r++) {
            int from = rowAt[r];
            for (int d = 0, at = r; d < dim; d++, at += rowsPad) {
                qT[at] = src[from + d] * scale;
            }
        }
        for (int r = rows; r < rowsPad; r++) {
            for (int d = 0, at = r; d < dim; d++, at += rowsPad) {
                qT[at] = 0f;
            }
        }
    }

    /**
     * Normalises one output row: {@code dst[dstAt + c] = o[oAt + c] / l} for {@code c < n} (a true
     * division, so bitwise the same in every flavour).
     */
    default void normalise(float[] o, int oAt, float l, float[] dst, int dstAt, int n) {
        for (int c = 0; c < n; c++) {
            dst[dstAt + c] = o[oAt + c] / l;
        }
    }

    /** Widens {@code n} bf16 bit patterns from {@code src[srcAt..]} to f32 in {@code dst[dstAt..]} (exact). */
    void widenBf16(short[] src, int srcAt, float[] dst, int dstAt, int n);

    /**
     * Widens {@code n} e4m3 codes from {@code src[srcAt..]} to their values under {@code scale}: {@code
     * dst[dstAt + i] = DType.e4m3ToFloat(src[srcAt + i]) × scale}, one f32 rounding, the value {@code
     * Tensor.get} returns (bitwise; NaN codes give NaN).
     */
    default void widenE4m3(byte[] src, int srcAt, float scale, float[] dst, int dstAt, int n) {
        for (int i = 0; i < n; i++) {
            dst[dstAt + i] = dev.sparsa.tensor.DType.e4m3ToFloat(src[srcAt + i]) * scale;
        }
    }

    /** Widens {@code n} f16 bit patterns from {@code src[srcAt..]} to f32 in {@code dst[dstAt..]} (exact). */
    default void widenF16(short[] src, int srcAt, float[] dst, int dstAt, int n) {
        // JDK 25's Vector API has no f16 lane conversion, so every flavour converts f16 in scalar code
        // (Float.float16ToFloat, which HotSpot intrinsifies on x86 with F16C).
        for (int i = 0; i < n; i++) {
            dst[dstAt + i] = Float.float16ToFloat(src[srcAt + i]);
        }
    }
}
