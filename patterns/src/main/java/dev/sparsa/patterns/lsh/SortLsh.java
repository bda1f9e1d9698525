package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * HyperAttention's sortLSH (Han et al., "HyperAttention: Long-context Attention in Near-Linear
 * Time"), per (batch, query head) slice: queries and keys are hashed with one {@link AngularLsh}
 * ({@code bits}, {@code seed}) and sorted by (bucket, position); the sorted queries are cut into
 * chunks of {@code chunk} rows and the sorted keys into as many chunks (key chunk {@code i} holds
 * sorted keys {@code [⌊i·Nk/C⌋, ⌊(i+1)·Nk/C⌋)}); query chunk {@code i} attends exactly to key chunk
 * {@code i} (the block diagonal of the sorted order), under causality on original positions.
 * Optionally each chunk also attends {@code m = min(samples, Nk)} keys drawn uniformly (seeded by
 * seed, slice and chunk; those falling in its own key chunk are dropped) with log-weight {@code
 * log(Nk/m)}, the
 * residual estimate HyperAttention merges through the LSE.
 *
 * <p>Compiles to listed-row tiles with gathered keys. Cost O(N · (bits + chunk/…) · headDim) to hash
 * and sort, O(N · (chunk·Nk/Nq + samples)) for the layout.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code chunk < 1}, {@code samples < 0} or bits not in [1, 30]
 *     (a chunk larger than the geometry's tile rows is cut to the tile rows at plan time)
 */
public final class SortLsh extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int bits;
    private final int chunk;
    private final int samples;
    private final long seed;

    public SortLsh(int bits, int chunk, int samples, long seed) {
        if (bits < 1 || bits > 30) {
            throw new IllegalArgumentException("bits: must be in [1, 30], got " + bits);
        }
        this.bits = bits;
        this.chunk = Checks.atLeast("chunk", chunk, 1);
        this.samples = Checks.atLeast("samples", samples, 0);
        this.seed = seed;
    }

    @Override
    public String name() {
        return "sortLSH(" + bits + " bits, chunk " + chunk + (samples > 0 ? ", " + samples + " samples" : "") + ")";
    }

    /** The rows of each query chunk and the keys of each key chunk, in sorted order (the oracle's view). */
    public record Chunks(int[][] rows, int[][] keys) {
    }

    /** The chunking of one slice from its flat Q and K rows ({@code [n · headDim]}). */
    public Chunks chunks(PlanContext ctx, float[] q, float[] k) {
        AngularLsh lsh = new AngularLsh(bits, ctx.shape().headDim(), seed);
        return chunks(ctx, lsh.hashAll(q, ctx.queryLength()), lsh.hashAll(k, ctx.keyLength()));
    }

    /** The chunking from the rows' hashes. */
    private Chunks chunks(PlanContext ctx, int[] qHash, int[] kHash) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int[] qOrder = AngularLsh.sortByBucket(qHash);
        int[] kOrder = AngularLsh.sortByBucket(kHash);
        int chunk = effectiveChunk(ctx);
        int c = (nq + chunk - 1) / chunk;
        int[][] rows = new int[c][];
        int[][] keys = new int[c][];
        for (int i = 0; i < c; i++) {
            rows[i] = java.util.Arrays.copyOfRange(qOrder, i * chunk, Math.min(nq, (i + 1) * chunk));
            keys[i] = java.util.Arrays.copyOfRange(kOrder, AngularLsh.chunkStart(i, c, nk), AngularLsh.chunkStart(i + 1, c, nk));
            java.util.Arrays.sort(keys[i]);
        }
        return new Chunks(rows, keys);
    }

    /** The chunk size used in a context: {@code min(chunk, tileRows)}. */
    public int effectiveChunk(PlanContext ctx) {
        return Math.min(chunk, ctx.geometry().tileRows());
    }

    /** The sampled residual keys of chunk {@code i} of slice {@code slice} (sorted, distinct, outside its key chunk). */
    public int[] sampled(int slice, int i, int[] chunkKeys, int nk) {
        if (samples == 0 || nk == 0) {
            return new int[0];
        }
        SplittableRandom rnd = new SplittableRandom(seed ^ (0x9E3779B97F4A7C15L * (slice + 1)) ^ (0xC2B2AE3D27D4EB4FL * (i + 1)));
        int[] out = new int[draws(nk)];
        for (int s = 0; s < out.length; s++) {
            out[s] = rnd.nextInt(nk);
        }
        java.util.Arrays.sort(out);
        // distinct, and outside the chunk's own keys (both ascending: one merge walk)
        int n = 0;
        int c = 0;
        for (int s = 0; s < out.length; s++) {
            int key = out[s];
            if (n > 0 && out[n - 1] == key) {
                continue;
            }
            while (c < chunkKeys.length && chunkKeys[c] < key) {
                c++;
            }
            if (c < chunkKeys.length && chunkKeys[c] == key) {
                continue;
            }
            out[n++] = key;
        }
        return java.util.Arrays.copyOf(out, n);
    }

    /** The log-weight of sampled keys: {@code log(Nk / draws)}. */
    public float sampleLogWeight(int nk) {
        return (float) Math.log((double) nk / draws(nk));
    }

    /** Keys drawn per chunk: {@code min(samples, Nk)} (more draws than keys would cost O(samples) for nothing). */
    public int draws(int nk) {
        return Math.min(samples, nk);
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        int nk = ctx.keyLength();
        return Plans.perSliceParallel(ctx, (b, h) -> {
            AngularLsh lsh = new AngularLsh(bits, ctx.shape().headDim(), seed);
            Chunks ch = chunks(ctx, lsh.hashAll(q, b, h), lsh.hashAll(k, b, ctx.shape().kvHeadOf(h)));
            int slice = b * ctx.shape().qHeads() + h;
            HeadLayoutBuilder lb = HeadLayout.builder(ctx, ctx.basePredicate());
            for (int i = 0; i < ch.rows().length; i++) {
                if (ch.rows()[i].length == 0) {
                    continue;
                }
                HeadLayoutBuilder.Tile t = lb.listedTile(ch.rows()[i]);
                int[] own = ch.keys()[i];
                int[] extra = samples > 0 ? sampled(slice, i, own, nk) : new int[0];
                float w = samples > 0 ? sampleLogWeight(nk) : 0f;
                // both lists ascending and disjoint: merged, so the builder finds them sorted
                for (int a = 0, e = 0; a < own.length || e < extra.length; ) {
                    if (e >= extra.length || (a < own.length && own[a] < extra[e])) {
                        t.gather(own[a++]);
                    } else {
                        t.gather(extra[e++], w);
                    }
                }
                t.end();
            }
            return lb.build();
        }, name(), q, k);
    }

    /** Hashing: (Nq + Nk)·bits·D per slice. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return (double) ctx.shape().slices() * ((double) ctx.queryLength() + ctx.keyLength()) * bits * ctx.shape().headDim();
    }

    /**
     * The hashing passes and the bucket sort: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 0.32;
    }
}
