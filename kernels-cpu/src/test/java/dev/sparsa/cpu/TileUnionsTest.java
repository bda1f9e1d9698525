package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.reference.Tolerance;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import java.util.TreeSet;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One-row tiles whose key lists overlap as an indexer's top-k lists of neighbouring queries do (a
 * shared set plus a few keys of each row's own) run in groups stacked over the union of their
 * lists, non-members masked. The outputs must match the fp64 oracle of the plan, and be bitwise the
 * same for 1, 2 and 3 threads and for one work item over all tiles: the groups are fixed by the
 * plan, not by how the call is cut into runs. Unconditional lists (no predicate), gathered lists
 * (the predicate drops keys a row may not see: causal, and a window), rows without keys, one to
 * four stacked heads.
 */
class TileUnionsTest {

    private static SparsePlan overlappingLists(PlanContext ctx, ElementPredicate predicate, long seed,
                                               boolean gathered) {
        SplittableRandom rnd = new SplittableRandom(seed);
        return Fixtures.planPerKvHead(ctx, "overlapping per-row lists", g -> {
            HeadLayoutBuilder b = HeadLayout.builder(ctx, predicate);
            TreeSet<Integer> shared = new TreeSet<>();
            int tiles = 0;
            for (int r = 0; r < ctx.queryLength(); r++) {
                long last = ctx.causal() ? Math.min(ctx.keyLength() - 1L, (long) r + ctx.queryOffset())
                        : ctx.keyLength() - 1L;
                if (r % 23 == 7 || last < 0) {
                    continue; // a row without a tile
                }
                if (tiles++ % 16 == 0) {
                    // a new shared part for every 16 tiles (the kernel's groups): each group's lists
                    // overlap enough to run over their union
                    shared.clear();
                    for (int i = 0; i < 100; i++) {
                        shared.add(rnd.nextInt((int) last + 1 + 16));
                    }
                }
                TreeSet<Integer> keys = new TreeSet<>();
                for (int key : shared) {
                    if ((gathered ? key < ctx.keyLength() : key <= last) && rnd.nextInt(8) != 0) {
                        keys.add(key);
                    }
                }
                for (int i = 0; i < 2; i++) {
                    // gathered lists may name keys the predicate refuses the row (later keys, or out of
                    // the window); the builder keeps them, the kernel must mask them
                    keys.add(rnd.nextInt((int) (gathered ? ctx.keyLength() - 1 : last) + 1));
                }
                int[] list = keys.stream().mapToInt(Integer::intValue).toArray();
                HeadLayoutBuilder.Tile t = b.tile(r, 1);
                if (gathered) {
                    t.gatherAll(list, 0, list.length);
                } else {
                    t.unconditionalAll(list, 0, list.length);
                }
                t.end();
            }
            return b.build();
        });
    }

    @ParameterizedTest
    @CsvSource({
        // qHeads, kvHeads, headDim, valueDim, causal, window, gathered, keys beyond the rows (4000: lists
        // sparse in their key range, whose groups run chunk by chunk instead)
        "1, 1, 128, 128, true, 0, false, 30",
        "1, 1, 64, 64, true, 0, true, 30",
        "4, 1, 64, 64, true, 0, false, 30",
        "2, 2, 72, 200, false, 0, true, 30",
        "2, 1, 128, 128, true, 40, true, 30",
        "1, 1, 16, 8, false, 0, false, 30",
        "1, 1, 32, 32, true, 0, true, 4000",
        "2, 1, 32, 32, false, 0, false, 4000",
    })
    void unionsMatchTheOracleAndGiveTheSameBitsForAnyThreadCount(int qHeads, int kvHeads, int headDim,
                                                                  int valueDim, boolean causal, int window,
                                                                  boolean gathered, int extraKeys) {
        int rows = 150;
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, rows, rows + extraKeys, headDim, valueDim);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(16, 24));
        PlanContext ctx = PlanContext.of(s, o);
        ElementPredicate predicate = window > 0 ? ctx.basePredicate().withBand(0, window - 1) : ctx.basePredicate();
        SparsePlan plan = overlappingLists(ctx, predicate, 97L * headDim + valueDim + (gathered ? 1 : 0), gathered);
        TileMath best = TileMathProvider.best();
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Problems.Qkv p = Problems.qkv(rows + headDim, s, dtype, Layout.BHSD);
            ReferenceResult ref = Fixtures.oracle(plan, p, o);
            // rows without a tile: 0 and −∞, as the backend clears them
            Fixtures.Run one = Fixtures.oneWorkItemPerKvHead(best, plan, p, o, 0f, Float.NEGATIVE_INFINITY);
            for (int threads = 1; threads <= 3; threads++) {
                Fixtures.Run run = Fixtures.run(new CpuBackend(best.flavour(), threads), plan, p, o);
                String what = dtype + ", " + threads + " threads";
                assertFalse(Fixtures.anyNaN(run), what + ": NaN");
                assertTrue(ref.maxRelativeError(run.out()) <= Tolerance.output(dtype), what + ": error "
                        + ref.maxRelativeError(run.out()));
                assertTrue(ref.maxLseError(run.lse()) <= Tolerance.lse(dtype), what + ": LSE error "
                        + ref.maxLseError(run.lse()));
                assertTrue(Fixtures.bitwiseEqual(one.out(), run.out()) && Fixtures.bitwiseEqual(one.lse(), run.lse()),
                        what + ": the bits differ from one work item over all tiles");
            }
        }
    }
}
