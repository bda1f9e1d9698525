package dev.sparsa.cli.fuzz;

import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.SplitKv;
import dev.sparsa.tensor.DType;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One decode fuzz case: ragged sequences in a contiguous and a paged cache, one step's Q, a decode
 * pattern and the options, and optionally one non-finite value planted in Q, K or V. Every field is
 * explicit so that a failing case prints as a line that reproduces it; {@link #random} draws one from
 * a seed with the edges drawn often (empty sequences, one token, lengths at page edges, more query
 * rows than tokens, budgets past the length, chunks of one key), batches of up to 12 sequences, up
 * to 4 KV heads, and paged pools in NHD order one case in four.
 *
 * @param batch       sequences
 * @param kvHeads     KV heads
 * @param group       query heads per KV head
 * @param rows        query rows per sequence (1 to 64)
 * @param headDim     key and value head dimension
 * @param pageSize    tokens per page of the paged cache (a power of two)
 * @param maxLength   the caches' capacity; sequence lengths are drawn up to it
 * @param pattern     which pattern ({@link #PATTERNS})
 * @param split       0 for the default rule, −1 for none, else a fixed chunk length
 * @param scaleFactor 0 for the default scale, else this times {@code 1/sqrt(headDim)}
 * @param paramSeed   seeds the lengths and the pattern's parameters
 * @param dataSeed    seeds Q, K and V
 * @param nonFinite   0 none, 1 NaN in Q, 2 +Inf in K, 3 −Inf in K, 4 NaN in V
 * @param threads     CPU workers for the call (the result must not depend on it)
 * @param tokenMajor  the paged pool in NHD order (a token's rows of every KV head side by side) instead of HND
 */
public record DecodeFuzzCase(int batch, int kvHeads, int group, int rows, int headDim, DType dtype, int pageSize,
                             int maxLength, int pattern, int split, float softCap, double scaleFactor, boolean outF32,
                             boolean withLse, long paramSeed, long dataSeed, int nonFinite, int threads,
                             boolean tokenMajor) {

    /** The pattern kinds, by index. Quest runs on the paged cache only (it reads the pages' bounds). */
    public static final List<String> PATTERNS = List.of("dense", "sink-window", "top-k", "quest", "per-kv-head",
            "explicit-selection");

    /** The options of the case. */
    public DecodeOptions options() {
        SplitKv s = split == 0 ? SplitKv.rule() : split < 0 ? SplitKv.none() : SplitKv.fixed(split);
        DecodeOptions o = DecodeOptions.defaults().withSplit(s).withSoftCap(softCap);
        if (scaleFactor > 0) {
            o = o.withScale(scaleFactor / Math.sqrt(headDim));
        }
        return outF32 ? o.withOutputDType(DType.F32) : o;
    }

    /**
     * A case drawn from {@code rnd} with sequences of up to about {@code maxLength} tokens and head dims
     * up to {@code maxDim} (a multiple of 8); with {@code gpuShapes}, head dims from those the CUDA
     * decode kernels cover (64, 128, 256).
     */
    public static DecodeFuzzCase random(SplittableRandom rnd, int maxLength, int maxDim, boolean gpuShapes) {
        int pageSize = 1 << rnd.nextInt(7);
        int cap = switch (rnd.nextInt(5)) {
            case 0 -> 1 + rnd.nextInt(3);
            case 1 -> pageSize + rnd.nextInt(-1, 2);
            default -> 1 + rnd.nextInt(Math.max(1, maxLength));
        };
        cap = Math.max(1, cap);
        int dims = Math.max(1, Math.min(256, maxDim) / 8);
        int headDim = 8 * (1 + rnd.nextInt(rnd.nextInt(4) == 0 ? dims : Math.min(8, dims)));
        if (gpuShapes) {
            headDim = new int[] {64, 128, 256}[rnd.nextInt(3)];
        }
        int rows = switch (rnd.nextInt(8)) {
            case 0 -> 64;
            case 1, 2 -> 2 + rnd.nextInt(7);
            default -> 1;
        };
        int split = switch (rnd.nextInt(5)) {
            case 0 -> -1;
            case 1 -> 1 + rnd.nextInt(8);
            case 2 -> 8 + rnd.nextInt(200);
            default -> 0;
        };
        float cap2 = rnd.nextInt(4) == 0 ? (float) (0.5 + rnd.nextDouble() * 30) : 0f;
        double scale = switch (rnd.nextInt(4)) {
            case 0 -> 0.25 + rnd.nextDouble();
            case 1 -> 1e-3;
            default -> 0;
        };
        int nonFinite = rnd.nextInt(10) == 0 ? 1 + rnd.nextInt(4) : 0;
        // batches up to 12 one case in six: large enough for the CPU's items across KV heads on a few cores
        int batches = switch (rnd.nextInt(6)) {
            case 0 -> 12;
            case 1 -> 4;
            default -> 2;
        };
        // 4 KV heads one case in eight: groups of heads for the CPU's items across KV heads
        int kvHeads = rnd.nextInt(8) == 0 ? 4 : 1 + rnd.nextInt(3);
        return new DecodeFuzzCase(1 + rnd.nextInt(batches), kvHeads, 1 + rnd.nextInt(4),
                rows, headDim, DType.values()[rnd.nextInt(DType.values().length)], pageSize, cap,
                rnd.nextInt(PATTERNS.size()), split, cap2, scale, rnd.nextBoolean(), rnd.nextBoolean(), rnd.nextLong(),
                rnd.nextLong(), nonFinite, 1 + rnd.nextInt(3), rnd.nextInt(4) == 0);
    }

    @Override
    public String toString() {
        return "decode[b" + batch + " kv" + kvHeads + "x" + group + " rows " + rows + " d" + headDim + " " + dtype
                + " page " + pageSize + " max " + maxLength + " " + PATTERNS.get(pattern) + " "
                + (split == 0 ? "rule" : split < 0 ? "no-split" : "split " + split) + (softCap > 0 ? " cap " + softCap : "")
                + (scaleFactor > 0 ? " scale×" + scaleFactor : "") + (outF32 ? " out-f32" : "") + (withLse ? " lse" : "")
                + " params " + paramSeed + " data " + dataSeed + (nonFinite > 0 ? " non-finite " + nonFinite : "")
                + " threads " + threads + (tokenMajor ? " nhd" : "") + "]";
    }
}
