package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Token gather with head packing: one-row tiles of per-query key lists (gathered, log-weighted or
 * unconditional), shared by the query heads of each GQA group (so the kernel stacks the group's heads
 * into one tile, FlashMLA's packing). Small stacks take the narrow form (dot products along the head
 * dimension with a masked tail when the dimension is not a multiple of the lanes, a softmax along the
 * keys); every flavour and thread count must match the oracle, with and without a soft-cap, and
 * thread counts must not change a bit.
 */
class TokenGatherKernelTest {

    /** One layout per KV head: every row a tile of its own with a random list (some gathered, some unconditional). */
    private static SparsePlan perRowLists(PlanContext ctx, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        return Fixtures.planPerKvHead(ctx, "per-row lists", g -> {
            HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
            for (int r = 0; r < ctx.queryLength(); r++) {
                long last = Math.min(ctx.keyLength() - 1L, ctx.causal() ? r + ctx.queryOffset() : Long.MAX_VALUE);
                if (last < 0 || rnd.nextInt(10) == 0) {
                    continue; // a row without keys
                }
                HeadLayoutBuilder.Tile t = b.tile(r, 1);
                int n = 1 + rnd.nextInt(70);
                boolean unconditional = rnd.nextBoolean();
                if (unconditional) {
                    int[] keys = rnd.ints(n, 0, (int) last + 1).sorted().distinct().toArray();
                    t.unconditionalAll(keys, 0, keys.length);
                } else if (rnd.nextBoolean()) {
                    // any keys: the predicate drops those the row may not see
                    int[] keys = rnd.ints(n, 0, ctx.keyLength()).sorted().distinct().toArray();
                    t.gatherAll(keys, 0, keys.length);
                } else {
                    for (int key : rnd.ints(n, 0, ctx.keyLength()).distinct().toArray()) {
                        t.gather(key, (float) (rnd.nextDouble() - 0.5)); // log-weights
                    }
                }
                t.end();
            }
            return b.build();
        });
    }

    @ParameterizedTest
    @CsvSource({
        // qHeads, kvHeads, n, headDim, valueDim, causal, softCap
        "1, 1, 70, 128, 128, true, 0",
        "2, 2, 45, 24, 40, true, 5",
        "4, 1, 50, 72, 64, false, 0",
        "8, 1, 33, 8, 16, true, 3",
        "16, 1, 20, 136, 8, true, 0",
        "6, 2, 41, 64, 64, false, 0",
    })
    void stackedHeadsOverPerRowListsMatchTheOracle(int qHeads, int kvHeads, int n, int headDim, int valueDim,
                                                    boolean causal, float softCap) {
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, n, n + 9, headDim, valueDim);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(16, 24)).withSoftCap(softCap);
        SparsePlan plan = perRowLists(PlanContext.of(s, o), n * 7L + qHeads);
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Problems.Qkv p = Problems.qkv(n + headDim, s, dtype, Layout.BHSD);
            ReferenceResult ref = Fixtures.oracle(plan, p, o);
            for (KernelFlavour f : KernelFlavour.values()) {
                if (f == KernelFlavour.VECTOR && TileMathProvider.best().flavour() != KernelFlavour.VECTOR) {
                    continue;
                }
                Fixtures.Run one = Fixtures.run(new CpuBackend(f, 1), plan, p, o);
                Fixtures.Run three = Fixtures.run(new CpuBackend(f, 3), plan, p, o);
                assertFalse(Fixtures.anyNaN(one), f + " " + dtype + ": NaN");
                assertTrue(ref.maxRelativeError(one.out()) <= Tolerance.output(dtype), f + " " + dtype + ": error "
                        + ref.maxRelativeError(one.out()));
                assertTrue(ref.maxLseError(one.lse()) <= Tolerance.lse(dtype), f + " " + dtype + " LSE");
                assertTrue(Fixtures.bitwiseEqual(one.out(), three.out()) && Fixtures.bitwiseEqual(one.lse(), three.lse()),
                        f + " " + dtype + ": thread count changed the bits");
            }
        }
    }

    @org.junit.jupiter.api.Test
    void theNarrowFormIsTakenOnlyWhereAtMostHalfTheLanesHoldRows() {
        TileMath scalar = TileMathProvider.scalar();
        assertFalse(scalar.narrow(1));
        TileMath best = TileMathProvider.best();
        if (best.flavour() == KernelFlavour.VECTOR) {
            assertTrue(best.narrow(1) && best.narrow(best.lanes() / 2));
            assertFalse(best.narrow(best.lanes() / 2 + 1));
        }
    }
}
