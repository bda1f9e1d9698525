package dev.sparsa.patterns.lsh;

import dev.sparsa.patterns.support.Checks;
import dev.sparsa.patterns.DataDependentPattern;
import dev.sparsa.patterns.support.Plans;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import java.util.List;

/**
 * Reformer-style multi-round LSH attention (Kitaev et al., "Reformer: The Efficient Transformer"),
 * per (batch, query head) slice: in each of {@code rounds} rounds (projections seeded by {@code seed}
 * and the round), queries and keys are hashed with {@link AngularLsh} and sorted by (bucket,
 * position), cut into chunks as in {@link SortLsh}; query chunk {@code i} attends key chunks {@code
 * i} and {@code i − 1} (look-one-back; chunk 0 has no predecessor), under causality on original
 * positions. A pair found in several rounds counts once — the plan's set semantics, which is what
 * Reformer's duplicate correction achieves. Queries and keys are hashed separately (Reformer ties
 * them through shared QK; here Q and K are given).
 *
 * <p>Layout: per round and chunk, a listed tile of the rows that meet no pair of an earlier round
 * there, gathering the chunk's keys; each other row gets a one-row tile of its new keys. Cost
 * O(rounds² · N · chunk) beyond hashing.
 *
 * <p>Throws {@link IllegalArgumentException} if {@code rounds < 1}, {@code chunk < 1} or bits not in [1, 30]
 *     (a chunk larger than the geometry's tile rows is cut to the tile rows at plan time)
 */
public final class ReformerLsh extends DataDependentPattern implements dev.sparsa.patterns.EstimatorCost {
    private final int rounds;
    private final int bits;
    private final int chunk;
    private final long seed;

    public ReformerLsh(int rounds, int bits, int chunk, long seed) {
        this.rounds = Checks.atLeast("rounds", rounds, 1);
        if (bits < 1 || bits > 30) {
            throw new IllegalArgumentException("bits: must be in [1, 30], got " + bits);
        }
        this.bits = bits;
        this.chunk = Checks.atLeast("chunk", chunk, 1);
        this.seed = seed;
    }

    @Override
    public String name() {
        return "reformerLSH(" + rounds + " rounds, " + bits + " bits, chunk " + chunk + ")";
    }

    /** Chunk index of every query row and key, per round: {@code [round][row]}, {@code [round][key]}. */
    public record Assignment(int[][] queryChunk, int[][] keyChunk, int chunks) {
    }

    /** The per-round chunk assignment of one slice (the oracle's view). */
    public Assignment assign(PlanContext ctx, float[] q, float[] k) {
        List<AngularLsh> family = family(ctx);
        return assign(ctx, AngularLsh.hashAll(family, q, ctx.queryLength()), AngularLsh.hashAll(family, k, ctx.keyLength()));
    }

    /** One hash function per round, seeded by the seed and the round. */
    private List<AngularLsh> family(PlanContext ctx) {
        List<AngularLsh> family = new java.util.ArrayList<>(rounds);
        for (int r = 0; r < rounds; r++) {
            family.add(new AngularLsh(bits, ctx.shape().headDim(), seed + 0x9E3779B97F4A7C15L * (r + 1)));
        }
        return family;
    }

    /** The assignment from every round's query and key hashes ({@code [round][row]}). */
    private Assignment assign(PlanContext ctx, int[][] qHash, int[][] kHash) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int chunk = Math.min(this.chunk, ctx.geometry().tileRows());
        int c = (nq + chunk - 1) / chunk;
        int[][] qc = new int[rounds][nq];
        int[][] kc = new int[rounds][nk];
        for (int r = 0; r < rounds; r++) {
            int[] qOrder = AngularLsh.sortByBucket(qHash[r]);
            int[] kOrder = AngularLsh.sortByBucket(kHash[r]);
            for (int i = 0; i < nq; i++) {
                qc[r][qOrder[i]] = i / chunk;
            }
            for (int i = 0; i < c; i++) {
                for (int j = AngularLsh.chunkStart(i, c, nk); j < AngularLsh.chunkStart(i + 1, c, nk); j++) {
                    kc[r][kOrder[j]] = i;
                }
            }
        }
        return new Assignment(qc, kc, c);
    }

    @Override
    public SparsePlan plan(PlanContext ctx, Tensor q, Tensor k) {
        Plans.checkInputs(ctx, q, k);
        List<AngularLsh> family = family(ctx);
        return Plans.perSliceParallel(ctx, (b, h) -> layout(ctx, assign(ctx, AngularLsh.hashAll(family, q, b, h),
                AngularLsh.hashAll(family, k, b, ctx.shape().kvHeadOf(h)))), name(), q, k);
    }

    private HeadLayout layout(PlanContext ctx, Assignment a) {
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int c = a.chunks();
        ElementPredicate p = ctx.basePredicate();
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        if (nq == 0) {
            return b.build(); // no query, no chunk: keys would have no chunk to go to
        }
        boolean causalOnly = p.onlyCausal() && p.causal();
        int[][] firstIndex = new int[rounds][c];
        for (int[] f : firstIndex) {
            Arrays.fill(f, Integer.MAX_VALUE);
        }
        for (int r = 0; r < rounds; r++) {
            // rows and keys of each chunk in this round (ascending)
            int[][] rowsOf = bucketise(a.queryChunk()[r], c);
            int[][] keysOf = bucketise(a.keyChunk()[r], c);
            for (int i = 0; i < c; i++) {
                if (rowsOf[i].length == 0) {
                    continue;
                }
                int[] keys = i == 0 ? keysOf[0] : merge(keysOf[i - 1], keysOf[i]);
                // each key's chunk in the earlier rounds, gathered once per chunk; and per earlier
                // round the first index (in the ascending keys) of each earlier chunk, so that a row
                // whose admitted keys are a prefix learns in O(rounds) whether it met any of them before
                int[][] earlier = new int[r][keys.length];
                for (int e = 0; e < r; e++) {
                    int[] kcE = a.keyChunk()[e];
                    int[] first = firstIndex[e];
                    for (int j = keys.length - 1; j >= 0; j--) {
                        int ch = kcE[keys[j]];
                        earlier[e][j] = ch;
                        first[ch] = j;
                    }
                }
                int[] group = new int[rowsOf[i].length];
                int ng = 0;
                int[] fresh = new int[keys.length];
                int prefix = 0; // rows and keys ascend, so each row's causally admitted prefix only grows
                for (int row : rowsOf[i]) {
                    long pos = (long) row + ctx.queryOffset();
                    // keys are ascending: with a causal-only predicate the admitted ones are a prefix
                    while (causalOnly && prefix < keys.length && keys[prefix] <= pos) {
                        prefix++;
                    }
                    int limit = causalOnly ? prefix : keys.length;
                    boolean clash = false;
                    if (causalOnly) {
                        for (int e = 0; e < r && !clash; e++) {
                            int qc = a.queryChunk()[e][row];
                            clash = firstIndex[e][qc] < limit || (qc > 0 && firstIndex[e][qc - 1] < limit);
                        }
                    } else {
                        clash = r > 0;
                    }
                    int nf = 0;
                    if (clash) {
                        int f = freshKeys(a, row, r, keys, limit, earlier, causalOnly ? null : p, pos, nk, fresh);
                        nf = f >>> 1;
                        clash = (f & 1) != 0;
                    }
                    if (!clash) {
                        group[ng++] = row;
                    } else if (nf > 0) {
                        b.tile(row, 1).gatherAll(fresh, 0, nf).end();
                    }
                }
                for (int e = 0; e < r; e++) {
                    for (int j = 0; j < keys.length; j++) {
                        firstIndex[e][earlier[e][j]] = Integer.MAX_VALUE;
                    }
                }
                if (ng > 0 && keys.length > 0) {
                    b.listedTile(Arrays.copyOf(group, ng)).gatherAll(keys, 0, keys.length).end();
                }
            }
        }
        return b.build();
    }

    /**
     * Writes to {@code fresh} the keys among {@code keys[0, limit)} that {@code row} did not meet in
     * rounds {@code [0, r)} (and that {@code p} admits, when one is given); returns twice how many,
     * plus 1 if some admitted key was met. A key was met in round e when the row's chunk is the
     * key's chunk or the next one. Branch-free: whether a key was met is close to a coin flip,
     * which a branch would mispredict.
     */
    private static int freshKeys(Assignment a, int row, int r, int[] keys, int limit, int[][] earlier, ElementPredicate p,
                                 long pos, int nk, int[] fresh) {
        int[] rowChunk = new int[r];
        for (int e = 0; e < r; e++) {
            rowChunk[e] = a.queryChunk()[e][row];
        }
        int nf = 0;
        boolean anyMet = false;
        for (int j = 0; j < limit; j++) {
            int key = keys[j];
            if (p != null && !p.admits(pos, key, nk)) {
                continue;
            }
            boolean met = false;
            for (int e = 0; e < r; e++) {
                met |= Integer.compareUnsigned(rowChunk[e] - earlier[e][j], 1) <= 0;
            }
            fresh[nf] = key;
            nf += met ? 0 : 1;
            anyMet |= met;
        }
        return nf << 1 | (anyMet ? 1 : 0);
    }

    static int[][] bucketise(int[] chunkOf, int c) {
        int[] count = new int[c];
        for (int x : chunkOf) {
            count[x]++;
        }
        int[][] out = new int[c][];
        for (int i = 0; i < c; i++) {
            out[i] = new int[count[i]];
        }
        int[] fill = new int[c];
        for (int j = 0; j < chunkOf.length; j++) {
            out[chunkOf[j]][fill[chunkOf[j]]++] = j;
        }
        return out;
    }

    /** The union of two ascending, disjoint key lists, ascending (one merge walk). */
    private static int[] merge(int[] a, int[] b) {
        int[] m = new int[a.length + b.length];
        for (int i = 0, j = 0, k = 0; k < m.length; k++) {
            m[k] = j >= b.length || (i < a.length && a[i] < b[j]) ? a[i++] : b[j++];
        }
        return m;
    }

    /** Hashing: rounds·(Nq + Nk)·bits·D per slice. */
    @Override
    public double scoringMacs(PlanContext ctx) {
        return (double) ctx.shape().slices() * rounds * ((double) ctx.queryLength() + ctx.keyLength()) * bits * ctx.shape().headDim();
    }

    /**
     * The hashing passes per round and the bucket sort: measured planning time over {@link #scoringMacs} relative to exact top-k's rate, by
     * PlanningCostCalibration (N 4096, H 8, D 128, causal, 2-vCPU AMD EPYC Zen 5; docs/PERFORMANCE.md, "Dispatch").
     */
    @Override
    public double costPerMac() {
        return 0.35;
    }
}
