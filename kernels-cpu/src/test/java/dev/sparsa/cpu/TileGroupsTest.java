package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
 * Narrow tiles of a run are visited in groups, chunk by chunk across the group (groups whose lists
 * are stacked over their union are {@link TileUnionsTest}'s). A tile's rows must
 * come out with the bits they have when the tile runs alone (a plan holding only that tile), whatever
 * the other tiles of its group hold: lists of different lengths (so tiles run out of chunks at
 * different points of the group), gathered, log-weighted and unconditional keys, key blocks before
 * the lists, one to three stacked heads, and value widths that take every P·V width of the narrow
 * form (8, 4, 2 and 1 column-vectors). Every output is also checked against the fp64 oracle.
 */
class TileGroupsTest {

    /** One key list per query row (and per KV head), drawn from {@code seed}; row {@code only} alone when ≥ 0. */
    private static SparsePlan lists(PlanContext ctx, long seed, int only) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int blocks = (ctx.keyLength() + ctx.geometry().blockCols() - 1) / ctx.geometry().blockCols();
        return Fixtures.planPerKvHead(ctx, "per-row lists", g -> {
            HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
            for (int r = 0; r < ctx.queryLength(); r++) {
                // drawn for every row, so that a row's list is the same in the whole plan and alone
                // row 0 log-weighted: its layout then carries log-weights, so that no group runs over the
                // union of its lists (that form's bits differ from the tile alone; TileUnionsTest)
                int kind = r == 0 ? 1 : rnd.nextInt(4);
                int n = 1 + rnd.nextInt(r % 5 == 0 ? 300 : 90);
                int[] keys = rnd.ints(n, 0, ctx.keyLength()).sorted().distinct().toArray();
                float[] weights = new float[keys.length];
                for (int i = 0; i < weights.length; i++) {
                    weights[i] = (float) (rnd.nextDouble() - 0.5);
                }
                int block = rnd.nextInt(blocks);
                if (only >= 0 && r != only) {
                    continue;
                }
                HeadLayoutBuilder.Tile t = b.tile(r, 1);
                switch (kind) {
                    case 0 -> t.gatherAll(keys, 0, keys.length);
                    case 1 -> {
                        for (int i = 0; i < keys.length; i++) {
                            t.gather(keys[i], weights[i]);
                        }
                    }
                    case 2 -> {
                        int row = r;
                        int[] below = java.util.Arrays.stream(keys).filter(k -> k <= row).toArray();
                        t.unconditionalAll(below, 0, below.length);
                    }
                    default -> {
                        t.blockByPredicate(block); // a block before the list
                        t.gatherAll(keys, 0, keys.length);
                    }
                }
                t.end();
            }
            return b.build();
        });
    }

    @ParameterizedTest
    @CsvSource({
        // qHeads, kvHeads, headDim, valueDim, causal
        "1, 1, 128, 128, true",
        "2, 2, 64, 64, false",
        "3, 1, 72, 200, true",
        "2, 1, 24, 40, true",
        "1, 1, 16, 8, false",
    })
    void groupedTilesGiveTheBitsOfEachTileAlone(int qHeads, int kvHeads, int headDim, int valueDim, boolean causal) {
        int rows = 37;
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, rows, rows + 260, headDim, valueDim);
        Options o = Options.defaults().withCausal(causal).withGeometry(new TileGeometry(16, 24));
        PlanContext ctx = PlanContext.of(s, o);
        long seed = 31L * headDim + valueDim;
        SparsePlan plan = lists(ctx, seed, -1);
        TileMath best = TileMathProvider.best();
        assertTrue(best.flavour() != KernelFlavour.VECTOR || best.narrow(qHeads / kvHeads),
                "the rows of these plans must take the narrow form, which is grouped");
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Problems.Qkv p = Problems.qkv(rows + headDim, s, dtype, Layout.BHSD);
            ReferenceResult ref = Fixtures.oracle(plan, p, o);
            Fixtures.Run[] alone = new Fixtures.Run[rows];
            for (int r = 0; r < rows; r++) {
                alone[r] = Fixtures.run(new CpuBackend(best.flavour(), 1), lists(ctx, seed, r), p, o);
            }
            Fixtures.Run[] runs = {
                Fixtures.oneWorkItemPerKvHead(best, plan, p, o, Float.NaN, Float.NaN),
                Fixtures.run(new CpuBackend(best.flavour(), 1), plan, p, o),
                Fixtures.run(new CpuBackend(best.flavour(), 2), plan, p, o),
            };
            for (int w = 0; w < runs.length; w++) {
                Fixtures.Run all = runs[w];
                String run = dtype + (w == 0 ? ", every tile in one work item" : ", the backend on " + w + " threads");
                assertFalse(Fixtures.anyNaN(all), run + ": NaN");
                assertTrue(ref.maxRelativeError(all.out()) <= Tolerance.output(dtype), run + ": error "
                        + ref.maxRelativeError(all.out()));
                assertTrue(ref.maxLseError(all.lse()) <= Tolerance.lse(dtype), run + ": LSE error");
                float[] a = new float[valueDim];
                float[] b = new float[valueDim];
                for (int r = 0; r < rows; r++) {
                    for (int h = 0; h < qHeads; h++) {
                        all.out().readRow(0, h, r, a, 0);
                        alone[r].out().readRow(0, h, r, b, 0);
                        for (int c = 0; c < valueDim; c++) {
                            assertEquals(Float.floatToRawIntBits(b[c]), Float.floatToRawIntBits(a[c]),
                                    run + ": row " + r + " head " + h + " column " + c
                                            + " differs from the tile run alone");
                        }
                        assertEquals(Float.floatToRawIntBits(alone[r].lse().get(0, h, r, 0)),
                                Float.floatToRawIntBits(all.lse().get(0, h, r, 0)),
                                run + ": row " + r + " head " + h + " LSE differs from the tile run alone");
                    }
                }
            }
        }
    }
}
