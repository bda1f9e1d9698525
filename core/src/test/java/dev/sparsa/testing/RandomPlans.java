package dev.sparsa.testing;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.RandomBlocks;
import dev.sparsa.plan.SparsePlan;
import java.util.SplittableRandom;

/**
 * Random plans that exercise every feature of the IR: contiguous and listed rows (some rows in two
 * tiles, some in none), full and partial blocks, gathered keys with and without log-weights,
 * unconditional keys, and assorted predicates. Shipped in sparsa-core's test-jar.
 */
public final class RandomPlans {
    private RandomPlans() {
    }

    /** A random predicate built on the context's base (causal or not). */
    public static ElementPredicate randomPredicate(SplittableRandom rnd, PlanContext ctx) {
        ElementPredicate p = ctx.basePredicate();
        switch (rnd.nextInt(6)) {
            case 0 -> { }
            case 1 -> p = p.withBand(-rnd.nextInt(1, 40), rnd.nextInt(0, 40));
            case 2 -> p = p.withBand(0, rnd.nextInt(1, 40)).withSinks(rnd.nextInt(0, 8));
            case 3 -> {
                int m = rnd.nextInt(2, 9);
                p = p.withStride(m, rnd.nextInt(m), rnd.nextBoolean());
            }
            case 4 -> p = p.withNeighbourhood(rnd.nextInt(1, Math.max(2, ctx.keyLength() + 3)));
            default -> p = p.withSinks(rnd.nextInt(1, 6)).withBand(0, 0);
        }
        return p;
    }

    /** A random layout; {@code weighted} adds log-weights to gathered and unconditional keys. */
    public static HeadLayout randomLayout(SplittableRandom rnd, PlanContext ctx, boolean weighted) {
        ElementPredicate p = randomPredicate(rnd, ctx);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, p);
        int rows = ctx.geometry().tileRows();
        int blocks = ctx.keyBlocks();
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        boolean listedMode = rnd.nextInt(4) == 0;
        if (listedMode && nq > 0) {
            // listed tiles over a random permutation; a few rows repeated in a second tile with disjoint keys
            int[] perm = permutation(rnd, nq);
            int dropped = rnd.nextInt(Math.min(3, nq) + 1);
            for (int at = dropped; at < nq; ) {
                int cnt = Math.min(rnd.nextInt(1, rows + 1), nq - at);
                int[] r = java.util.Arrays.copyOfRange(perm, at, at + cnt);
                HeadLayoutBuilder.Tile t = b.listedTile(r);
                // even blocks here; a second tile over the same rows gets odd blocks
                for (int blk = 0; blk < blocks; blk += 2) {
                    if (rnd.nextInt(3) > 0) {
                        t.blockByPredicate(blk);
                    }
                }
                t.end();
                if (rnd.nextInt(3) == 0) {
                    HeadLayoutBuilder.Tile t2 = b.listedTile(r);
                    for (int blk = 1; blk < blocks; blk += 2) {
                        if (rnd.nextBoolean()) {
                            t2.partial(blk);
                        }
                    }
                    t2.end();
                }
                at += cnt;
            }
            return b.build();
        }
        for (int start = 0; start < nq; start += rows) {
            int cnt = Math.min(rows, nq - start);
            if (rnd.nextInt(10) == 0) {
                continue; // rows of no tile: output 0, LSE -inf
            }
            HeadLayoutBuilder.Tile t = b.tile(start, cnt);
            boolean[] used = new boolean[blocks];
            for (int blk = 0; blk < blocks; blk++) {
                int c = rnd.nextInt(5);
                if (c == 0) {
                    t.full(blk);
                    used[blk] = true;
                } else if (c == 1) {
                    t.partial(blk);
                    used[blk] = true;
                } else if (c == 2) {
                    t.blockByPredicate(blk);
                    used[blk] = true;
                }
            }
            int gathers = rnd.nextInt(0, Math.min(nk, 12) + 1);
            java.util.BitSet gatheredKeys = new java.util.BitSet(nk);
            for (int g = 0; g < gathers && nk > 0; g++) {
                int key = rnd.nextInt(nk);
                // a key drawn twice would carry two different log-weights, which the builder refuses
                if (!used[key / ctx.geometry().blockCols()] && !gatheredKeys.get(key)) {
                    gatheredKeys.set(key);
                    t.gather(key, weighted ? (float) rnd.nextDouble(-2, 2) : 0f);
                }
            }
            if (nk > 0 && rnd.nextInt(3) == 0) {
                int key = rnd.nextInt(nk);
                if (!used[key / ctx.geometry().blockCols()]) {
                    t.unconditional(key, weighted ? (float) rnd.nextDouble(-1, 1) : 0f);
                }
            }
            t.end();
        }
        return b.build();
    }

    /** A plan with a few distinct random layouts spread over the slices. */
    public static SparsePlan randomPlan(long seed, PlanContext ctx, boolean weighted) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int distinct = rnd.nextInt(1, 4);
        HeadLayout[] ls = new HeadLayout[distinct];
        for (int i = 0; i < distinct; i++) {
            ls[i] = randomLayout(rnd, ctx, weighted);
        }
        SparsePlan.Builder pb = SparsePlan.builder(ctx).describe("random");
        for (int b = 0; b < ctx.shape().batch(); b++) {
            for (int h = 0; h < ctx.shape().qHeads(); h++) {
                pb.slice(b, h, ls[rnd.nextInt(distinct)]);
            }
        }
        return pb.build();
    }

    /**
     * A random block-sparse plan: each causally admissible (tile, block) kept with probability {@code
     * density} ({@link RandomBlocks}, the library's one seeded selection).
     */
    public static SparsePlan randomBlockSparse(long seed, PlanContext ctx, double density) {
        return SparsePlan.uniform(ctx, RandomBlocks.layout(ctx, density, seed), "random-block-sparse(" + density + ")");
    }

    private static int[] permutation(SplittableRandom rnd, int n) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int x = p[i];
            p[i] = p[j];
            p[j] = x;
        }
        return p;
    }
}
