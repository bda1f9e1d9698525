package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import dev.sparsa.testing.RandomPlans;
import java.util.SplittableRandom;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

/**
 * The kernel (both flavours) against the fp64 oracle on random shapes and random plans using every
 * feature of the IR, in every dtype and both input layouts, at the numerics contract's tolerances ({@code Tolerance}).
 */
class CpuKernelOracleProperties {
    private static final int[] GROUPS = {1, 2, 4, 8};
    private static final int[] TILE_ROWS = {8, 16, 24, 32, 64};
    private static final int[] BLOCK_COLS = {8, 16, 24, 40, 64};

    /** A random problem, options and plan drawn from one seed. */
    record Case(AttentionShape shape, Options options, SparsePlan plan, Problems.Qkv qkv, DType outType, String text) {
    }

    static Case randomCase(long seed, DType dtype, Layout layout) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int group = GROUPS[rnd.nextInt(GROUPS.length)];
        int kvHeads = group == 8 ? 1 : rnd.nextInt(1, 3);
        int batch = rnd.nextInt(1, 3);
        int nq = rnd.nextInt(4) == 0 ? 1 : rnd.nextInt(1, 71);
        int nk = rnd.nextInt(1, 91);
        int headDim = 8 * rnd.nextInt(1, 33);
        int valueDim = rnd.nextBoolean() ? headDim : 8 * rnd.nextInt(1, 33);
        AttentionShape shape = new AttentionShape(batch, kvHeads * group, kvHeads, nq, nk, headDim, valueDim);
        Options options = Options.defaults()
                .withCausal(rnd.nextBoolean())
                .withGeometry(new TileGeometry(TILE_ROWS[rnd.nextInt(TILE_ROWS.length)],
                        BLOCK_COLS[rnd.nextInt(BLOCK_COLS.length)]));
        if (rnd.nextInt(3) == 0) {
            options = options.withQueryOffset(rnd.nextInt(-5, nk + 5));
        }
        if (rnd.nextInt(4) == 0) {
            options = options.withSoftCap((float) rnd.nextDouble(2, 30));
        }
        DType outType = rnd.nextBoolean() ? dtype.defaultOutput() : DType.F32;
        options = options.withOutputDType(outType);
        PlanContext ctx = PlanContext.of(shape, options);
        SparsePlan plan = switch (rnd.nextInt(6)) {
            case 0 -> Dense.INSTANCE.plan(ctx);
            case 1 -> RandomPlans.randomBlockSparse(rnd.nextLong(), ctx, rnd.nextDouble());
            default -> RandomPlans.randomPlan(rnd.nextLong(), ctx, rnd.nextBoolean());
        };
        Problems.Qkv qkv = Problems.qkv(rnd.nextLong(), shape, dtype, layout);
        String text = shape + " " + options + " " + plan + " " + dtype + " " + layout;
        return new Case(shape, options, plan, qkv, outType, text);
    }

    @Property(tries = 60)
    void matchesTheOracle(@ForAll long seed, @ForAll DType dtype, @ForAll Layout layout, @ForAll KernelFlavour flavour,
                          @ForAll @IntRange(min = 1, max = 3) int threads) {
        Case c = randomCase(seed, dtype, layout);
        Fixtures.Run r = Fixtures.run(new CpuBackend(flavour, threads), c.plan(), c.qkv(), c.options(), c.outType(),
                layout);
        assertFalse(Fixtures.anyNaN(r), () -> "NaN in " + c.text());
        ReferenceResult ref = Fixtures.oracle(c.plan(), c.qkv(), c.options());
        double err = ref.maxRelativeError(r.out());
        double bound = c.outType() == DType.F32 ? Problems.tolerance(DType.F32) : Problems.tolerance(dtype);
        assertTrue(err <= bound, () -> "relative error " + err + " > " + bound + " for " + c.text());
        double lseErr = ref.maxLseError(r.lse());
        assertTrue(lseErr <= 1e-4, () -> "LSE error " + lseErr + " for " + c.text());
    }

    @Property(tries = 25)
    void bitwiseIdenticalForAnyThreadCount(@ForAll long seed, @ForAll KernelFlavour flavour, @ForAll DType dtype) {
        Case c = randomCase(seed, dtype, Layout.BHSD);
        Fixtures.Run one = Fixtures.run(new CpuBackend(flavour, 1), c.plan(), c.qkv(), c.options());
        for (int threads = 2; threads <= 3; threads++) {
            Fixtures.Run many = Fixtures.run(new CpuBackend(flavour, threads), c.plan(), c.qkv(), c.options());
            int t = threads;
            assertTrue(Fixtures.bitwiseEqual(one.out(), many.out()), () -> "output differs at " + t + " threads: " + c.text());
            assertTrue(Fixtures.bitwiseEqual(one.lse(), many.lse()), () -> "LSE differs at " + t + " threads: " + c.text());
        }
    }
}
