package dev.sparsa.cli.fuzz;

import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import java.util.SplittableRandom;

/**
 * One fuzz case: a shape, a dtype and layout, the options, a pattern with its parameters, the data,
 * and optionally one non-finite value planted in Q, K or V. Every field is explicit so that a
 * failing case prints as a line that reproduces it; {@link #random} draws one from a seed, with the
 * edge values (zero and one rows or keys, lengths at tile boundaries, queries before the first key,
 * parameters far past the sequence) drawn often.
 *
 * @param pattern     which pattern family ({@link PatternSpecs#KINDS})
 * @param paramSeed   seeds the pattern's parameters
 * @param dataSeed    seeds Q, K and V
 * @param nonFinite   0 none, 1 NaN in Q, 2 +Inf in K, 3 −Inf in K, 4 NaN in V
 * @param threads     CPU workers for the call (the result must not depend on it)
 * @param scaleFactor 0 for the default scale, else the scale is this times {@code 1/sqrt(headDim)}
 */
public record FuzzCase(int batch, int kvHeads, int group, int queryLength, int keyLength, int headDim, int valueDim,
                       DType dtype, Layout layout, boolean outF32, boolean causal, Integer queryOffset, int tileRows,
                       int blockCols, float softCap, double scaleFactor, boolean withLse, int pattern, long paramSeed,
                       long dataSeed, int nonFinite, int threads) {

    /** Q's dtype: the case's, except that half the e4m3 cases (by the data seed) take a bf16 Q. */
    public DType queryType() {
        return dtype.isScaled() && (dataSeed & 1) == 1 ? DType.BF16 : dtype;
    }

    public AttentionShape shape() {
        return new AttentionShape(batch, kvHeads * group, kvHeads, queryLength, keyLength, headDim, valueDim);
    }

    public Options options() {
        Options o = Options.defaults().withCausal(causal).withQueryOffset(queryOffset)
                .withGeometry(new TileGeometry(tileRows, blockCols)).withSoftCap(softCap);
        if (scaleFactor > 0) {
            o = o.withScale(scaleFactor / Math.sqrt(headDim));
        }
        return outF32 ? o.withOutputDType(DType.F32) : o;
    }

    /** A case drawn from {@code rnd}: lengths up to 100, head dims up to 256. */
    public static FuzzCase random(SplittableRandom rnd) {
        return random(rnd, 100, 256, false);
    }

    /**
     * A case drawn from {@code rnd} with query and key lengths up to about {@code maxLength} (tile
     * edges may pass it by one tile) and head dims up to {@code maxDim} (a multiple of 8). With
     * {@code gpuShapes}, tilings and head dims are drawn from those the CUDA kernels cover (64×64 and
     * 128×128 tiles; head dims 64, 80, 96, 128, 256 and the pairs 128/64, 64/128, 192/128), so that a
     * GPU run skips few cases.
     */
    public static FuzzCase random(SplittableRandom rnd, int maxLength, int maxDim, boolean gpuShapes) {
        int tileRows = gpuShapes ? pick(rnd, 64, 128) : pick(rnd, 8, 16, 24, 32, 64);
        int blockCols = gpuShapes ? tileRows : pick(rnd, 8, 16, 24, 32, 64);
        int nq = length(rnd, tileRows, maxLength);
        int nk = length(rnd, blockCols, maxLength);
        Integer offset = null;
        int o = rnd.nextInt(6);
        if (o == 0) {
            offset = rnd.nextInt(-nq - 8, nk + 9); // anywhere, queries before the first key included
        } else if (o == 1) {
            offset = 0; // top-left alignment (negative offsets when nq > nk come from the default)
        }
        int dims = Math.max(1, maxDim / 8);
        int headDim = 8 * (1 + rnd.nextInt(rnd.nextInt(4) == 0 ? dims : Math.min(8, dims)));
        int valueDim = rnd.nextInt(3) == 0 ? 8 * (1 + rnd.nextInt(Math.min(8, dims))) : headDim;
        if (gpuShapes) {
            int[][] pairs = {{64, 64}, {80, 80}, {96, 96}, {128, 128}, {256, 256}, {128, 64}, {64, 128}, {192, 128}};
            int[] pair = pairs[rnd.nextInt(pairs.length)];
            headDim = pair[0];
            valueDim = pair[1];
        }
        DType dtype = DType.values()[rnd.nextInt(DType.values().length)];
        float cap = rnd.nextInt(4) == 0 ? (float) (0.5 + rnd.nextDouble() * 30) : 0f;
        double scale = switch (rnd.nextInt(4)) {
            case 0 -> 0.25 + rnd.nextDouble();
            case 1 -> 1e-3;
            default -> 0;
        };
        int nonFinite = rnd.nextInt(10) == 0 ? 1 + rnd.nextInt(4) : 0;
        return new FuzzCase(1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 3 : 1), 1 + rnd.nextInt(3), 1 + rnd.nextInt(3), nq, nk,
                headDim, valueDim, dtype, rnd.nextBoolean() ? Layout.BHSD : Layout.BSHD, rnd.nextBoolean(),
                rnd.nextInt(3) != 0, offset, tileRows, blockCols, cap, scale, rnd.nextBoolean(),
                rnd.nextInt(PatternSpecs.KINDS.size()), rnd.nextLong(), rnd.nextLong(), nonFinite, 1 + rnd.nextInt(3));
    }

    /** A length with the edges drawn often: 0, 1, one tile less, one tile, one tile more, or any up to {@code max}. */
    private static int length(SplittableRandom rnd, int unit, int max) {
        return switch (rnd.nextInt(8)) {
            case 0 -> rnd.nextInt(2);
            case 1 -> unit + rnd.nextInt(-1, 2);
            case 2 -> 2 * unit + rnd.nextInt(-1, 2);
            default -> 1 + rnd.nextInt(Math.max(1, max));
        };
    }

    private static int pick(SplittableRandom rnd, int... values) {
        return values[rnd.nextInt(values.length)];
    }

    @Override
    public String toString() {
        return "case[b" + batch + " kv" + kvHeads + "x" + group + " nq" + queryLength + " nk" + keyLength + " d" + headDim
                + "/" + valueDim + " " + dtype + (queryType() != dtype ? " q-" + queryType() : "") + " " + layout
                + (outF32 ? " out-f32" : "") + (causal ? " causal" : "")
                + (queryOffset != null ? " offset " + queryOffset : "") + " tiles " + tileRows + "x" + blockCols
                + (softCap > 0 ? " cap " + softCap : "") + (scaleFactor > 0 ? " scale×" + scaleFactor : "")
                + (withLse ? " lse" : "") + " " + PatternSpecs.KINDS.get(pattern) + " params " + paramSeed + " data "
                + dataSeed + (nonFinite > 0 ? " non-finite " + nonFinite : "") + " threads " + threads + "]";
    }
}
