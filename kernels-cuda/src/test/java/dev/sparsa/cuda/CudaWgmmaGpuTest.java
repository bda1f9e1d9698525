package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The Hopper (wgmma, sm_90a) kernel: that the backend routes bf16/f16 at head dims 64, 128 and 256 on 128×128 tiles
 * to it on a compute capability 9.0 device (and to the mma.sync kernel elsewhere), and that it matches
 * the fp64 oracle at the dtype's tolerance on dense, causal, window, random-block, gathered-key and
 * listed-row plans with GQA and enough key blocks to wrap its pipeline (2 to 8 stages) several times. Needs a
 * GPU: skipped where the backend is unavailable.
 */
@Tag("gpu")
class CudaWgmmaGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();
    private static final TileGeometry G128 = new TileGeometry(128, 128);

    @BeforeAll
    static void needsDevice() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @Test
    void bf16AndF16AtHeadDims64To256RunTheWgmmaKernelExactlyOnHopper() {
        boolean hopper = BACKEND.device().computeCapability() == KernelChoice.HOPPER;
        AttentionShape s = AttentionShape.of(1, 4, 256, 256, 128);
        for (DType t : new DType[] {DType.BF16, DType.F16}) {
            KernelChoice k = BACKEND.kernelFor(s, t, G128);
            assertEquals(hopper, k.hopper(), BACKEND.device() + " runs " + k.name());
            String dt = t == DType.BF16 ? "bf16" : "f16";
            assertEquals(hopper ? "sparsa_wg_" + dt + "_d128_r128" : "sparsa_tc_" + dt + "_d128_r128", k.name());
        }
        assertTrue(BACKEND.kernelFor(s, DType.BF16, new TileGeometry(64, 64)).name().startsWith("sparsa_tc_"));
        assertEquals(hopper ? "sparsa_wg_bf16_d64_r128" : "sparsa_tc_bf16_d64_r128",
                BACKEND.kernelFor(AttentionShape.of(1, 4, 256, 256, 64), DType.BF16, G128).name());
        assertEquals(hopper ? "sparsa_wg_f16_d256_r128" : "sparsa_tc_f16_d256_r128",
                BACKEND.kernelFor(AttentionShape.of(1, 4, 256, 256, 256), DType.F16, G128).name());
        assertTrue(BACKEND.kernelFor(AttentionShape.of(1, 4, 256, 256, 96), DType.BF16, G128).name().startsWith("sparsa_tc_"));
    }

    static Stream<Arguments> plans() {
        List<Arguments> a = new ArrayList<>();
        for (int d : KernelChoice.HOPPER_DIMS) {
            for (DType t : new DType[] {DType.BF16, DType.F16}) {
                for (String p : new String[] {"dense", "causal", "window-300", "blocks-30%", "gathered+listed", "random-weighted",
                        "empty-tiles"}) {
                    a.add(Arguments.of(p, t, d));
                }
            }
        }
        return a.stream();
    }

    @ParameterizedTest(name = "{0} {1} d{2}")
    @MethodSource("plans")
    void matchesTheOracle(String pattern, DType dtype, int d) {
        // GQA (8 query heads on 2 KV heads); 700 queries: 6 tiles, the last one partial; 13 key blocks = 26 chunks
        AttentionShape s = new AttentionShape(1, 8, 2, 700, 1650, d, d);
        boolean causal = pattern.equals("causal") || pattern.startsWith("window") || pattern.equals("gathered+listed");
        Options o = Options.defaults().withGeometry(G128).withCausal(causal).withQueryOffset(causal ? 950 : null);
        PlanContext ctx = PlanContext.of(s, o);
        SparsePlan plan = switch (pattern) {
            case "dense", "causal" -> Dense.INSTANCE.plan(ctx);
            case "window-300" -> window(ctx, 300);
            case "blocks-30%" -> RandomPlans.randomBlockSparse(17, ctx, 0.3);
            case "gathered+listed" -> gatheredAndListed(ctx, 5);
            case "random-weighted" -> RandomPlans.randomPlan(23, ctx, true);
            default -> emptyTiles(ctx);
        };
        Problems.Qkv p = Problems.qkv(pattern.hashCode(), s, dtype, Layout.BHSD);
        Tensor out = CudaAttentionGpuTest.poisoned(dtype, Layout.BHSD, 1, 8, 700, d);
        Tensor lse = CudaAttentionGpuTest.poisoned(DType.F32, Layout.BHSD, 1, 8, 700, 1);
        BACKEND.forward(plan, p.q(), p.k(), p.v(), out, lse, o);
        assertTrue(plan.pairsAdmitted() > 0, pattern + ": the plan admits pairs");
        ReferenceResult ref = ReferenceAttention.plan(plan, p.q(), p.k(), p.v(), o);
        double tol = Problems.tolerance(dtype);
        double err = ref.maxRelativeError(out);
        String what = pattern + " " + dtype + " on " + BACKEND.kernelFor(s, dtype, G128).name() + " (" + plan + ")";
        assertTrue(err <= tol, what + ": relative error " + err + " > " + tol);
        double lseErr = ref.maxLseError(lse);
        assertTrue(lseErr <= 1e-3, what + ": LSE error " + lseErr);
    }

    /** Causal sliding window of {@code w} keys at the context's query offset: full blocks inside, partial ones at the edges. */
    static SparsePlan window(PlanContext ctx, int w) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, w - 1));
        int qo = ctx.queryOffset();
        b.tilesByPredicate(t -> Math.floorDiv(t * 128 + qo - (w - 1), 128), t -> ((t + 1) * 128 - 1 + qo) / 128);
        return SparsePlan.uniform(ctx, b.build(), "window-" + w);
    }

    /** Listed rows (a shuffle of all rows), full and partial blocks, gathered and unconditional keys with log-weights. */
    static SparsePlan gatheredAndListed(PlanContext ctx, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate().withBand(0, 700).withSinks(3));
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int[] perm = new int[nq];
        for (int i = 0; i < nq; i++) {
            perm[i] = i;
        }
        for (int i = nq - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            int x = perm[i];
            perm[i] = perm[j];
            perm[j] = x;
        }
        for (int start = 0; start < nq; start += 128) {
            int[] rows = java.util.Arrays.copyOfRange(perm, start, Math.min(nq, start + 128));
            HeadLayoutBuilder.Tile t = b.listedTile(rows);
            boolean[] visited = new boolean[ctx.keyBlocks()];
            for (int blk = 0; blk < ctx.keyBlocks(); blk++) {
                int c = r.nextInt(6);
                if (c == 0) {
                    t.full(blk);
                } else if (c == 1) {
                    t.partial(blk);
                }
                visited[blk] = c <= 1;
            }
            // distinct keys outside the visited blocks: a layout admits each pair at most once
            java.util.Set<Integer> keys = new java.util.LinkedHashSet<>();
            int gathered = r.nextInt(40, 200);
            int uncond = r.nextInt(1, 70);
            while (keys.size() < gathered + uncond) {
                int key = r.nextInt(nk);
                if (!visited[key / 128]) {
                    keys.add(key);
                }
            }
            int i = 0;
            for (int key : keys) {
                if (i++ < gathered) {
                    t.gather(key, (float) -r.nextDouble(2));
                } else {
                    t.unconditional(key, (float) -r.nextDouble(2));
                }
            }
            t.end();
        }
        return SparsePlan.uniform(ctx, b.build(), "gathered+listed");
    }

    /** Tiles without keys (rows → 0 and −∞), tiles of one chunk, and tiles of many chunks, side by side. */
    static SparsePlan emptyTiles(PlanContext ctx) {
        HeadLayoutBuilder b = HeadLayout.builder(ctx, ctx.basePredicate());
        int nq = ctx.queryLength();
        for (int start = 0, t = 0; start < nq; start += 128, t++) {
            HeadLayoutBuilder.Tile tile = b.tile(start, Math.min(128, nq - start));
            if (t % 3 == 1) {
                tile.full(t);
            } else if (t % 3 == 2) {
                tile.blocksByPredicate(0, ctx.keyBlocks() - 1);
            }
            tile.end();
        }
        return SparsePlan.uniform(ctx, b.build(), "empty-tiles");
    }
}
