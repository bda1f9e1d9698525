package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Block tiles of a run that share their K/V blocks (each block converted once and run for every tile
 * of the run whose next block it is) must give the bits of each tile run alone, block after block:
 * dense, causal, windowed and random block layouts (blocks in any order, partial blocks among full
 * ones, listed keys after the blocks), stacked GQA heads, value widths off the lanes, f32 and bf16,
 * BHSD and BSHD, a soft cap. And the rule: dense and causal runs share, a 5 % random layout does not.
 */
class TileSharingTest {

    /** A plan of one layout per KV head: {@code kind} 0 dense, 1 a window of 4 blocks, 2 random blocks (30 %) with a few listed keys. */
    private static SparsePlan plan(PlanContext ctx, int kind, long seed) {
        int keyBlocks = (ctx.keyLength() + ctx.geometry().blockCols() - 1) / ctx.geometry().blockCols();
        int tileRows = ctx.geometry().tileRows();
        SplittableRandom rnd = new SplittableRandom(seed);
        return Fixtures.planPerKvHead(ctx, "kind " + kind, g -> {
            HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
            switch (kind) {
                case 0 -> b.tilesByPredicate(t -> 0, t -> keyBlocks - 1);
                case 1 -> b.tilesByPredicate(t -> t - 3, t -> t);
                default -> {
                    for (int start = 0; start < ctx.queryLength(); start += tileRows) {
                        HeadLayoutBuilder.Tile t = b.tile(start, Math.min(tileRows, ctx.queryLength() - start));
                        boolean descending = rnd.nextBoolean();
                        for (int i = 0; i < keyBlocks; i++) {
                            int blk = descending ? keyBlocks - 1 - i : i;
                            if (rnd.nextDouble() < 0.3) {
                                t.blockByPredicate(blk);
                            }
                        }
                        t.blockByPredicate(0); // at least one block (a repeat is classified again)
                        if (rnd.nextInt(3) == 0) {
                            int[] keys = rnd.ints(1 + rnd.nextInt(90), 0, ctx.keyLength()).sorted().distinct().toArray();
                            t.gatherAll(keys, 0, keys.length);
                        }
                        t.end();
                    }
                }
            }
            return b.build();
        });
    }

    /**
     * Each KV head's stacked heads as one work item over every tile, at most {@code shareTiles} tiles
     * sharing a block wherever they visit any block twice (the rule's threshold at 1, so that the
     * random layouts share too).
     */
    private static Fixtures.Run run(SparsePlan plan, Problems.Qkv p, Options o, int shareTiles) {
        AttentionShape s = p.shape();
        Tensor out = Tensor.allocate(o.outputTypeFor(p.q().dtype()), Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(),
                s.valueDim());
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, s.batch(), s.qHeads(), s.queryLength(), 1);
        TileRunner runner = new TileRunner(TileMathProvider.best(), plan, s, p.q(), p.k(), p.v(), out, lse, o.run(),
                shareTiles, 1);
        for (int b = 0; b < s.batch(); b++) {
            for (int g = 0; g < s.kvHeads(); g++) {
                int h0 = g * s.groupSize();
                int layout = plan.layoutIndex(b, h0);
                runner.run(new WorkItem(b, h0, s.groupSize(), layout, 0, plan.layouts().get(layout).tileCount(), 1));
            }
        }
        return new Fixtures.Run(out, lse);
    }

    @ParameterizedTest
    @CsvSource({
        // qHeads, kvHeads, queryLength, keyLength, headDim, valueDim, causal, layout kind, softCap
        "1, 1, 700, 700, 64, 64, false, 0, 0",
        "1, 1, 700, 700, 64, 64, true, 0, 0",
        "2, 1, 530, 777, 128, 40, true, 0, 0",
        "4, 2, 600, 650, 32, 128, false, 1, 0",
        "1, 1, 640, 900, 64, 72, true, 1, 30",
        "2, 2, 700, 700, 64, 64, false, 2, 0",
        "3, 1, 400, 520, 48, 48, true, 2, 20",
    })
    void sharedBlocksGiveTheBitsOfEachTileAlone(int qHeads, int kvHeads, int queryLength, int keyLength, int headDim,
                                                int valueDim, boolean causal, int kind, float softCap) {
        AttentionShape s = new AttentionShape(1, qHeads, kvHeads, queryLength, keyLength, headDim, valueDim);
        Options o = Options.defaults().withCausal(causal);
        if (softCap > 0) {
            o = o.withSoftCap(softCap);
        }
        PlanContext ctx = PlanContext.of(s, o);
        SparsePlan plan = plan(ctx, kind, 17L * queryLength + kind);
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            for (Layout layout : new Layout[] {Layout.BHSD, Layout.BSHD}) {
                Problems.Qkv p = Problems.qkv(queryLength + headDim, s, dtype, layout);
                Fixtures.Run alone = run(plan, p, o, 1);
                assertFalse(Fixtures.anyNaN(alone), "NaN");
                for (int share : new int[] {2, 3, TileRunner.SHARE_TILES, TileRunner.GROUP_TILES}) {
                    Fixtures.Run shared = run(plan, p, o, share);
                    String what = dtype + " " + layout + ", up to " + share + " tiles sharing";
                    assertTrue(Fixtures.bitwiseEqual(alone.out(), shared.out()), what + ": outputs differ");
                    assertTrue(Fixtures.bitwiseEqual(alone.lse(), shared.lse()), what + ": LSEs differ");
                }
            }
        }
    }

    @Test
    void denseAndCausalRunsShareRandomSparseOnesDoNot() {
        AttentionShape s = AttentionShape.of(1, 1, 4096, 4096, 128);
        Problems.Qkv p = Problems.qkv(3, AttentionShape.of(1, 1, 64, 64, 128), DType.F32, Layout.BHSD);
        for (boolean causal : new boolean[] {false, true}) {
            PlanContext ctx = PlanContext.of(s, Options.defaults().withCausal(causal));
            HeadLayout lay = plan(ctx, 0, 1).layouts().get(0);
            TileRunner runner = runnerFor(plan(ctx, 0, 1), p);
            for (int t0 = 0; t0 + 8 <= lay.tileCount(); t0 += 8) {
                assertTrue(runner.sharePays(lay, t0, t0 + 8, new Scratch()), "causal " + causal + ", tiles " + t0 + "..");
            }
        }
        // 5 % of the blocks, at random: a run of 8 tiles visits each distinct block about 1.2 times
        PlanContext ctx = PlanContext.of(s, Options.defaults());
        SplittableRandom rnd = new SplittableRandom(5);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        for (int start = 0; start < 4096; start += 64) {
            HeadLayoutBuilder.Tile t = b.tile(start, 64);
            for (int blk = 0; blk < 64; blk++) {
                if (rnd.nextDouble() < 0.05 || blk == start / 64) {
                    t.blockByPredicate(blk);
                }
            }
            t.end();
        }
        HeadLayout lay = b.build();
        SparsePlan sparse = SparsePlan.builder(ctx).describe("5 %").head(0, lay).build();
        TileRunner runner = runnerFor(sparse, p);
        int shared = 0;
        for (int t0 = 0; t0 + 8 <= lay.tileCount(); t0 += 8) {
            shared += runner.sharePays(lay, t0, t0 + 8, new Scratch()) ? 1 : 0;
        }
        assertEquals(0, shared, "runs of a 5 % random layout that share");
    }

    /** A runner over {@code plan}; {@link TileRunner#sharePays} reads only the layout, so small tensors do. */
    private static TileRunner runnerFor(SparsePlan plan, Problems.Qkv p) {
        AttentionShape s = p.shape();
        Tensor out = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, s.queryLength(), s.valueDim());
        return new TileRunner(TileMathProvider.best(), plan, plan.shape(), p.q(), p.k(), p.v(), out, null,
                Options.defaults().run(), TileRunner.SHARE_TILES, TileRunner.SHARE_MIN);
    }
}
