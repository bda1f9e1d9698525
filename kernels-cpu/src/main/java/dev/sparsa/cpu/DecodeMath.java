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
     * them ahead of {@link #accumulate}; they do not enter the scores. {@code read}: the caller streams
     * the rows (or they are cached), so the implementation reads no rows ahead of its arithmetic; reading
     * ahead changes no result.
     */
    void scores(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, MemorySegment values, long[] vOff,
                int dimV, DType dtype, int n, float[] s, int ldS, boolean read);

    /**
     * {@link #scores} for {@code heads} KV heads at once, in the order the rows lie in a paged pool read
     * page by page: for each page of {@code pageKeys} keys (the last may be shorter), every head's keys of
     * the page. Head {@code g}'s key {@code j} lies at {@code kOff[j] + shift[g]}; its scores go to
     * {@code s[g][x·ldS + j]} with the bits {@link #scores} gives them. Lanes up to the next multiple of
     * the lane count past a page may be written too, and are rewritten by the page that follows.
     */
    void scoresAcrossHeads(float[][] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff, long[] shift,
                           int heads, int pageKeys, DType dtype, int n, float[][] s, int ldS);

    /**
     * {@link #accumulate} for {@code heads} KV heads at once, page by page as {@link #scoresAcrossHeads}:
     * head {@code g}'s value row {@code j} at {@code vOff[j] + shift[g]}, probabilities {@code p[g]},
     * outputs {@code o[g]} scaled by {@code alpha[g]} first; the bits of {@link #accumulate} per head.
     */
    void accumulateAcrossHeads(float[][] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, long[] shift,
                               int heads, int pageKeys, DType dtype, int dimV, float[][] o, int ldO, float[][] alpha);

    /**
     * {@code out[x][i] = Σ_c max(q[x][c]·min_i[c], q[x][c]·max_i[c])} for pages {@code i < n} whose min
     * and max rows start at byte offsets {@code minOff[i]}, {@code maxOff[i]}.
     */
    void questBounds(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff, long[] maxOff,
                     DType dtype, int n, float[] out, int ldS);

    /**
     * One online-softmax step per query vector over its {@code n} scores: {@code m' = max(m, max_j
     * s)}, {@code s ← exp(s − m')}, {@code alpha = exp(m − m')}, {@code l ← l·alpha + Σ_j s}. A vector
     * whose max stays −∞ gets probabilities 0 and alpha 0. May overwrite {@code s[x][n .. ldS)}.
     */
    void softmax(float[] s, int ldS, int nq, int n, float[] m, float[] l, float[] alpha);

    /**
     * {@code o[x][c] = alpha[x]·o[x][c] + Σ_{j<n} p[x][j]·value_j[c]} for {@code x < nq}, {@code c < dimV},
     * the products added in key order ({@code alpha} null: no scaling, so that a run of keys may be
     * accumulated in pieces with the bits of one call); {@code read} as for {@link #scores}.
     */
    void accumulate(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, DType dtype, int dimV,
                    float[] o, int ldO, float[] alpha, boolean read);
}
