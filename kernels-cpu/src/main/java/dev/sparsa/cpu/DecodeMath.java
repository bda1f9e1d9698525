package dev.sparsa.cpu;

import dev.sparsa.tensor.DType;
import java.lang.foreign.MemorySegment;

/**
 * The arithmetic of decode on one block of keys, with keys along the vector lanes: each key row is
 * read once from the cache (f32 or bf16, in place; f16 rows are widened by the caller) for every query
 * vector of a KV group. Implementations differ only in how they compute (plain loops, Vector API);
 * for one implementation a query vector's result depends only on its own data and the key order,
 * so paged and contiguous caches, and any split of the work, give bitwise the same numbers. Public
 * only so that the Vector API flavour ({@code dev.sparsa.cpu.panama}, compiled apart) can implement
 * it; applications decode through {@link CpuBackend}.
 *
 * <p>Layouts: {@code q[x·ldQ + d]} the query vectors (already scaled), zero past {@code dim} up to
 * {@code ldQ}; keys and values are rows of {@code dtype} at byte offsets {@code kOff[j]}/{@code
 * vOff[j]} of a segment; {@code s[x·ldS + j]} scores then probabilities (keys along a row, {@code
 * ldS} a multiple of every lane count and at least the block); {@code o[x·ldO + c]} running outputs.
 */
public interface DecodeMath {

    /** Which flavour this is. */
    KernelFlavour flavour();

    /**
     * {@code s[x][j] = Σ_d q[x][d]·key_j[d]} for {@code x < nq}, {@code j < n}. The value rows of the
     * same keys ({@code dimV} values at {@code vOff[j]}) are given so that an implementation may read
     * them ahead of {@link #accumulate}; they do not enter the scores. {@code read}: the caller read
     * these rows through {@link #readRows}, so the implementation does not read them ahead again.
     */
    void scores(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, MemorySegment values, long[] vOff,
                int dimV, DType dtype, int n, float[] s, int ldS, boolean read);

    /**
     * Reads the {@code n} key rows ({@code dim} values at {@code kOff[j]}) and value rows ({@code dimV}
     * values at {@code vOff[j]}) once, key and value row of each key in turn, so that they are cached
     * for the arithmetic that follows; changes no result. Where a caller did this, it passes {@code
     * read} to {@link #scores} and {@link #accumulate}, which then do not read the rows ahead themselves.
     * {@code dimV} may be 0 (only key rows to read; {@code vOff} must still have {@code n} entries).
     */
    void readRows(MemorySegment keys, long[] kOff, int dim, MemorySegment values, long[] vOff, int dimV, DType dtype,
                  int n);

    /**
     * {@code out[x][i] = Σ_c max(q[x][c]·min_i[c], q[x][c]·max_i[c])} for pages {@code i < n} whose min
     * and max rows start at byte offsets {@code minOff[i]}, {@code maxOff[i]}. {@code bySign}: the
     * caller found {@link #boundsBySign} true for these query vectors, so an implementation may take
     * each channel's product with the bound the query's sign picks, which has the same bits (NaN's
     * payload aside: a NaN ranks the same whatever its bits).
     */
    void questBounds(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff, long[] maxOff,
                     DType dtype, int n, float[] out, int ldS, boolean bySign);

    /**
     * Whether every channel {@code c < dim} of query vectors {@code x < nq} is finite and not 0. Then
     * {@code q·(q < 0 ? min : max)} equals {@code Math.max(q·min, q·max)} bit for bit for every bound
     * pair {@code min ≤ max} (infinite ones too: the product with the other bound is never larger, and q
     * is never 0 against an infinity; rounding keeps the order of the two products, zeros' signs
     * included) and for NaN in both bounds (not for NaN in one: the product with the other bound could
     * win the pick). Appends write {@code min ≤ max} per channel, or NaN in both.
     */
    static boolean boundsBySign(float[] q, int ldQ, int nq, int dim) {
        for (int x = 0; x < nq; x++) {
            for (int c = 0, i = x * ldQ; c < dim; c++, i++) {
                float a = Math.abs(q[i]);
                // false for 0, ±∞ and NaN
                if (!(a > 0f && a < Float.POSITIVE_INFINITY)) {
                    return false;
                }
            }
        }
        return true;
    }

    /**
     * One online-softmax step per query vector over its {@code n} scores: {@code m' = max(m, max_j
     * s)}, {@code s ← exp(s − m')}, {@code alpha = exp(m − m')}, {@code l ← l·alpha + Σ_j s}. A vector
     * whose max stays −∞ gets probabilities 0 and alpha 0. May overwrite {@code s[x][n .. ldS)}.
     */
    void softmax(float[] s, int ldS, int nq, int n, float[] m, float[] l, float[] alpha);

    /**
     * {@code o[x][c] = alpha[x]·o[x][c] + Σ_{j<n} p[x][j]·value_j[c]} for {@code x < nq}, {@code c < dimV};
     * {@code read} as for {@link #scores}.
     */
    void accumulate(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, DType dtype, int dimV,
                    float[] o, int ldO, float[] alpha, boolean read);
}
