package dev.sparsa.attention;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.pattern.Dense;
import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.tensor.Device;
import dev.sparsa.testing.OracleBackend;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The drop-in call's cache plans a static pattern once per context and prepares it once per target. */
class PlanCacheTest {

    /** A static pattern that counts its planning; equal by its id, as record patterns are. */
    record Counting(int id, AtomicInteger plans) implements Pattern {
        @Override
        public String name() {
            return "counting" + id;
        }

        @Override
        public SparsePlan plan(PlanContext context) {
            plans.incrementAndGet();
            return Dense.INSTANCE.plan(context);
        }
    }

    private static PlanContext context(int n, boolean causal) {
        return PlanContext.of(AttentionShape.of(1, 2, n, n, 16), Options.defaults().withCausal(causal));
    }

    @Test
    void plansOncePerPatternAndContextAndPreparesOncePerTarget() {
        PlanCache cache = new PlanCache();
        AtomicInteger plans = new AtomicInteger();
        OracleBackend backend = new OracleBackend();
        PreparedPlan first = cache.prepared(new Counting(1, plans), context(100, true), backend, Device.CPU);
        for (int i = 0; i < 5; i++) {
            // an equal pattern object made anew, as a loop that builds its pattern each step does
            assertSame(first, cache.prepared(new Counting(1, plans), context(100, true), backend, Device.CPU));
        }
        assertEquals(1, plans.get());
        assertEquals(1, backend.prepares.get());
        PreparedPlan other = cache.prepared(new Counting(1, plans), context(100, true), backend, Device.cuda(0));
        assertNotSame(first, other);
        assertSame(first.plan(), other.plan(), "one plan, prepared for two devices");
        assertEquals(2, backend.prepares.get());
        cache.prepared(new Counting(1, plans), context(101, true), backend, Device.CPU);
        cache.prepared(new Counting(1, plans), context(100, false), backend, Device.CPU);
        cache.prepared(new Counting(2, plans), context(100, true), backend, Device.CPU);
        assertEquals(4, plans.get(), "another length, causality or pattern plans again");
    }

    @Test
    void decidesOncePerBackendDtypeAndMode() {
        PlanCache cache = new PlanCache();
        AtomicInteger decided = new AtomicInteger();
        Counting p = new Counting(3, new AtomicInteger());
        java.util.function.Function<SparsePlan, DispatchDecision> decide = plan -> {
            decided.incrementAndGet();
            return DispatchDecision.given(plan);
        };
        DispatchDecision first = cache.decision(p, context(80, true), "cpu", dev.sparsa.tensor.DType.F32,
                dev.sparsa.spec.Dispatch.AUTO, decide);
        assertSame(first, cache.decision(p, context(80, true), "cpu", dev.sparsa.tensor.DType.F32,
                dev.sparsa.spec.Dispatch.AUTO, decide));
        assertSame(cache.plan(p, context(80, true)), first.plan(), "the decision is about the cached plan");
        cache.decision(p, context(80, true), "cpu", dev.sparsa.tensor.DType.BF16, dev.sparsa.spec.Dispatch.AUTO, decide);
        cache.decision(p, context(80, true), "cpu", dev.sparsa.tensor.DType.F32, dev.sparsa.spec.Dispatch.SPARSE, decide);
        cache.decision(p, context(80, true), "cuda", dev.sparsa.tensor.DType.F32, dev.sparsa.spec.Dispatch.AUTO, decide);
        assertEquals(4, decided.get());
    }

    @Test
    void aClosedPreparedPlanIsPreparedAgain() {
        PlanCache cache = new PlanCache();
        OracleBackend backend = new OracleBackend();
        Counting p = new Counting(1, new AtomicInteger());
        cache.prepared(p, context(64, false), backend, Device.CPU).close();
        PreparedPlan again = cache.prepared(p, context(64, false), backend, Device.CPU);
        assertEquals(true, again.isOpen());
        assertEquals(2, backend.prepares.get());
    }

    @Test
    void keepsAtMostItsCapacityLeastRecentlyUsedFirstOut() {
        PlanCache cache = new PlanCache();
        AtomicInteger plans = new AtomicInteger();
        for (int n = 1; n <= PlanCache.CAPACITY + 10; n++) {
            cache.plan(new Counting(1, plans), context(n, false));
        }
        assertEquals(PlanCache.CAPACITY, cache.size());
        int before = plans.get();
        cache.plan(new Counting(1, plans), context(PlanCache.CAPACITY + 10, false));
        assertEquals(before, plans.get(), "the most recent stays");
        cache.plan(new Counting(1, plans), context(1, false));
        assertEquals(before + 1, plans.get(), "the oldest was dropped");
    }
}
