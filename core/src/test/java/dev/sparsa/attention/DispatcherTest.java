package dev.sparsa.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.attention.DispatchDecision.Ran;
import dev.sparsa.backend.KernelCostModel;
import dev.sparsa.backend.LinearCostModel;
import dev.sparsa.backend.LinearCostModel.Coefficients;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.pattern.PlanningCost;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.HeadLayoutBuilder;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Dispatch;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.util.EnumMap;
import java.util.Map;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/** The dispatch decision, from plans and fixed cost models: no timing anywhere. */
class DispatcherTest {
    private static final PlanContext CTX = PlanContext.of(AttentionShape.of(1, 2, 256, 256, 32),
            Options.causalMask().withGeometry(new TileGeometry(16, 16)));
    private static final Supplier<SparsePlan> DENSE = () -> Dense.INSTANCE.plan(CTX);

    /** A model charging 1 ns per padded (row, key) with rows padded to {@code quantum}, plus {@code perItem}. */
    private static LinearCostModel model(int quantum, double perItem) {
        Map<DType, Coefficients> c = new EnumMap<>(DType.class);
        for (DType t : DType.values()) {
            c.put(t, new Coefficients(0, perItem, 0, 0, 1, 0, 0, 0, 0, 0));
        }
        return new LinearCostModel("test model", quantum, false, 1, c);
    }

    /** Each row its own tile, gathering {@code keys} keys at or before it: a per-query selection. */
    private static SparsePlan oneRowTiles(int keys) {
        HeadLayoutBuilder b = HeadLayout.builder(CTX, CTX.basePredicate());
        for (int r = 0; r < CTX.queryLength(); r++) {
            HeadLayoutBuilder.Tile t = b.listedTile(new int[] {r});
            for (int k = Math.max(0, r - keys + 1); k <= r; k++) {
                t.gather(k);
            }
            t.end();
        }
        return SparsePlan.uniform(CTX, b.build(), "one-row tiles");
    }

    @Test
    void aSubstituteMustBeatThePlanByTheMarginAndTheCheaperSubstituteWins() {
        assertEquals(Ran.SPARSE, Dispatcher.choose(100, Double.NaN, 95));
        assertEquals(Ran.DENSE, Dispatcher.choose(100, Double.NaN, 80));
        assertEquals(Ran.BLOCK_EXPANDED, Dispatcher.choose(100, 50, 80));
        assertEquals(Ran.DENSE, Dispatcher.choose(100, 70, 60));
        assertEquals(Ran.DENSE, Dispatcher.choose(100, 60, 60));
        assertEquals(Ran.SPARSE, Dispatcher.choose(100, 91, 95));
        assertEquals(Ran.SPARSE, Dispatcher.choose(0, 0, 0));
    }

    @Test
    void oneRowTilesRunBlockExpandedOrDenseWhereRowsArePadded() {
        SparsePlan plan = oneRowTiles(24);
        // rows padded to 16: each one-row tile costs 16 rows; the expanded 16-row tiles visit three blocks
        DispatchDecision d = Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, model(16, 0), DType.F32, DENSE);
        assertEquals(Ran.BLOCK_EXPANDED, d.ran(), d.toString());
        assertTrue(d.expandedMillis() < d.denseMillis() && d.denseMillis() < d.sparseMillis(), d.toString());
        assertTrue(d.plan().description().endsWith("block-expanded"));
        assertEquals("test model", d.model());
        // without padding the plan is the cheapest: it runs as it is
        DispatchDecision unpadded = Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, model(1, 0), DType.F32, DENSE);
        assertEquals(Ran.SPARSE, unpadded.ran(), unpadded.toString());
        assertSame(plan, unpadded.plan());
        // a long selection per row: the expansion covers what dense does, and dense wins the tie
        DispatchDecision wide = Dispatcher.afterPlanning(Dispatch.AUTO, oneRowTiles(250), 0, model(16, 5000), DType.F32,
                DENSE);
        assertEquals(Ran.DENSE, wide.ran(), wide.toString());
        assertEquals("dense", wide.plan().description());
    }

    @Test
    void theModesAndTheDefaultModelDecideWithoutEstimates() {
        SparsePlan plan = oneRowTiles(24);
        assertEquals(Ran.SPARSE, Dispatcher.afterPlanning(Dispatch.SPARSE, plan, 0, model(16, 0), DType.F32, DENSE).ran());
        assertEquals(Ran.DENSE, Dispatcher.afterPlanning(Dispatch.DENSE, plan, 0, model(16, 0), DType.F32, DENSE).ran());
        DispatchDecision byPairs = Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, KernelCostModel.visitedPairs(),
                DType.F32, DENSE);
        assertEquals(Ran.SPARSE, byPairs.ran(), "a superset never visits fewer pairs: " + byPairs);
    }

    @Test
    void aPlanWithLogWeightsRunsAsItIs() {
        HeadLayout lay = HeadLayout.builder(CTX, CTX.basePredicate()).listedTile(new int[] {200}).gather(3, 0.25f).end().build();
        DispatchDecision d = Dispatcher.afterPlanning(Dispatch.AUTO, SparsePlan.uniform(CTX, lay, "weighted"), 0,
                model(16, 1e9), DType.F32, DENSE);
        assertEquals(Ran.SPARSE, d.ran());
        assertTrue(d.reason().contains("log-weights"), d.reason());
    }

    /** A data-dependent pattern that reports a fixed scoring cost. */
    record Estimator(double macs) implements Pattern, PlanningCost {
        @Override
        public String name() {
            return "estimator";
        }

        @Override
        public boolean dataDependent() {
            return true;
        }

        @Override
        public SparsePlan plan(PlanContext context) {
            throw new UnsupportedOperationException();
        }

        @Override
        public SparsePlan plan(PlanContext context, Tensor q, Tensor k) {
            return Dense.INSTANCE.plan(context);
        }

        @Override
        public double scoringMacs(PlanContext ctx) {
            return macs;
        }
    }

    @Test
    void planningThatCostsMoreThanDenseSkipsThePattern() {
        LinearCostModel m = model(16, 0);
        double denseMs = m.denseMillis(CTX, DType.BF16);
        double macsForDense = denseMs * 1e6 / Dispatcher.planNanosPerMac();
        DispatchDecision skip = Dispatcher.beforePlanning(Dispatch.AUTO, new Estimator(macsForDense * 1.01), CTX, m,
                DType.BF16, DENSE);
        assertEquals(Ran.DENSE, skip.ran());
        assertTrue(skip.reason().startsWith("planning estimator alone"), skip.reason());
        assertEquals(denseMs * 1.01, skip.planningMillis(), denseMs * 1e-9);
        assertNull(Dispatcher.beforePlanning(Dispatch.AUTO, new Estimator(macsForDense * 0.99), CTX, m, DType.BF16, DENSE));
        assertNull(Dispatcher.beforePlanning(Dispatch.SPARSE, new Estimator(1e30), CTX, m, DType.BF16, DENSE));
        assertNull(Dispatcher.beforePlanning(Dispatch.AUTO, Dense.INSTANCE, CTX, m, DType.BF16, DENSE), "static patterns plan");
        assertEquals(Ran.DENSE, Dispatcher.beforePlanning(Dispatch.DENSE, Dense.INSTANCE, CTX, m, DType.BF16, DENSE).ran());
    }

    @Test
    void eachDistinctDecisionIsLoggedOnceAtFine() {
        java.util.logging.Logger log = java.util.logging.Logger.getLogger(Dispatcher.class.getName());
        java.util.List<java.util.logging.LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
        java.util.logging.Handler h = new java.util.logging.Handler() {
            @Override
            public void publish(java.util.logging.LogRecord r) {
                records.add(r);
            }

            @Override
            public void flush() {
            }

            @Override
            public void close() {
            }
        };
        java.util.logging.Level before = log.getLevel();
        log.setLevel(java.util.logging.Level.FINE);
        log.addHandler(h);
        try {
            DispatchDecision d = Dispatcher.afterPlanning(Dispatch.AUTO, oneRowTiles(24), 0, model(16, 0), DType.F32, DENSE);
            String name = "logged-once-" + System.nanoTime();
            for (int i = 0; i < 3; i++) {
                Dispatcher.logOnce(d, name, CTX, "test", DType.F32);
            }
            java.util.List<java.util.logging.LogRecord> mine = records.stream()
                    .filter(r -> r.getMessage().contains(name)).toList();
            assertEquals(1, mine.size(), "logged once: " + records);
            assertEquals(java.util.logging.Level.FINE, mine.get(0).getLevel());
            assertTrue(mine.get(0).getMessage().contains("block-expanded"), mine.get(0).getMessage());
        } finally {
            log.removeHandler(h);
            log.setLevel(before);
        }
    }

    @Test
    void theSameCallAlwaysDecidesTheSame() {
        SparsePlan plan = oneRowTiles(40);
        DispatchDecision a = Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, model(16, 100), DType.F16, DENSE);
        DispatchDecision b = Dispatcher.afterPlanning(Dispatch.AUTO, plan, 0, model(16, 100), DType.F16, DENSE);
        assertEquals(a.ran(), b.ran());
        assertEquals(a.sparseMillis(), b.sparseMillis());
        assertEquals(a.expandedMillis(), b.expandedMillis());
        assertEquals(a.denseMillis(), b.denseMillis());
    }
}
