package dev.sparsa.cli.fuzz;

import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import java.util.List;
import java.util.SplittableRandom;

/**
 * One ragged-batch fuzz case: sequences of random query and key lengths (empty ones included),
 * packed or padded, a pattern and the options. Every field is explicit so that a failing case prints
 * as a line that reproduces it.
 *
 * @param sequences   how many sequences
 * @param kvHeads     KV heads
 * @param group       query heads per KV head
 * @param headDim     key and value head dimension
 * @param packed      packed tokens ({@code cu_seqlens}) rather than a padded batch
 * @param sameLengths whether each sequence's query and key lengths are equal (self-attention)
 * @param maxLength   the longest length drawn
 * @param causal      causal attention (bottom-right per sequence)
 * @param tileRows    the geometry's query rows (the same for the batch and every sequence alone)
 * @param blockCols   the geometry's key columns
 * @param pattern     which pattern ({@link #PATTERNS})
 * @param paramSeed   seeds the lengths and the pattern's parameters
 * @param dataSeed    seeds Q, K and V
 */
public record RaggedFuzzCase(int sequences, int kvHeads, int group, int headDim, DType dtype, boolean packed,
                             boolean sameLengths, int maxLength, boolean causal, int tileRows, int blockCols,
                             boolean outF32, int pattern, long paramSeed, long dataSeed) {

    /** The pattern kinds, by index: static ones and data-dependent ones, each valid at any length. */
    public static final List<String> PATTERNS = List.of("dense", "sliding-window", "a-shape", "symmetric-window",
            "strided", "dilated-window", "random-blocks", "mean-pool-top-k", "top-k", "moba");

    /** The options of the case: the pattern's own plan (no dispatch change), a fixed geometry. */
    public Options options() {
        Options o = Options.defaults().withCausal(causal).withDispatch(Dispatch.SPARSE)
                .withGeometry(new TileGeometry(tileRows, blockCols));
        return outF32 ? o.withOutputDType(DType.F32) : o;
    }

    /**
     * A case drawn from {@code rnd} with lengths up to about {@code maxLength} and head dims up to
     * {@code maxDim}; with {@code gpuShapes}, tilings and head dims the CUDA kernels cover.
     */
    public static RaggedFuzzCase random(SplittableRandom rnd, int maxLength, int maxDim, boolean gpuShapes) {
        int tileRows = gpuShapes ? (rnd.nextBoolean() ? 64 : 128) : new int[] {8, 16, 32, 64}[rnd.nextInt(4)];
        int blockCols = gpuShapes ? tileRows : new int[] {8, 16, 32, 64}[rnd.nextInt(4)];
        int dims = Math.max(1, Math.min(256, maxDim) / 8);
        int headDim = gpuShapes ? new int[] {64, 128}[rnd.nextInt(2)] : 8 * (1 + rnd.nextInt(Math.min(8, dims)));
        return new RaggedFuzzCase(1 + rnd.nextInt(5), 1 + rnd.nextInt(2), 1 + rnd.nextInt(3), headDim,
                DType.values()[rnd.nextInt(DType.values().length)], rnd.nextBoolean(), rnd.nextInt(3) != 0,
                Math.max(1, maxLength), rnd.nextInt(3) != 0, tileRows, blockCols, rnd.nextBoolean(),
                rnd.nextInt(PATTERNS.size()), rnd.nextLong(), rnd.nextLong());
    }

    @Override
    public String toString() {
        return "ragged[" + sequences + " seqs kv" + kvHeads + "x" + group + " d" + headDim + " " + dtype + " "
                + (packed ? "packed" : "padded") + (sameLengths ? "" : " q≠k") + " max " + maxLength
                + (causal ? " causal" : "") + " tiles " + tileRows + "x" + blockCols + (outF32 ? " out-f32" : "") + " "
                + PATTERNS.get(pattern) + " params " + paramSeed + " data " + dataSeed + "]";
    }
}
