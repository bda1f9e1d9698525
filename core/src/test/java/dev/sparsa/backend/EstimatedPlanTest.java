package dev.sparsa.backend;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.RunOptions;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.OracleBackend;
import org.junit.jupiter.api.Test;

/**
 * The contract of {@link EstimatedPlan} and of the SPI's default: a backend that does not estimate
 * on a device answers null; an estimated plan lives on a device, runs while open, is released once,
 * and refuses to run once closed.
 */
class EstimatedPlanTest {
    private static final PlanContext CTX = PlanContext.of(new AttentionShape(1, 2, 1, 8, 8, 4, 4), Options.defaults());
    private static final Device FAKE = new Device("fake", 0);

    /** Counts its runs and releases; bounds its visited pairs by {@code bound}. */
    private static final class Counting extends EstimatedPlan {
        int runs;
        int releases;
        double bound = 1.0;

        Counting(Device device) {
            super(Dense.INSTANCE, CTX, new OracleBackend(), device);
        }

        @Override
        public double visitedFractionBound() {
            return bound;
        }

        @Override
        protected void run(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, RunOptions options) {
            runs++;
        }

        @Override
        protected void release() {
            releases++;
        }
    }

    @Test
    void theDefaultBackendDoesNotEstimateOnADevice() {
        assertNull(new OracleBackend().prepareEstimated(Dense.INSTANCE, CTX, FAKE));
        assertThrows(IllegalArgumentException.class, () -> new OracleBackend().prepareEstimated(null, CTX, FAKE));
    }

    @Test
    void runsWhileOpenAndReleasesOnce() {
        Counting p = new Counting(FAKE);
        assertEquals(FAKE, p.device());
        assertEquals(CTX, p.context());
        assertTrue(p.isOpen());
        p.forward(null, null, null, null, null, RunOptions.defaults());
        assertEquals(1, p.runs);
        p.close();
        p.close();
        assertEquals(1, p.releases);
        assertFalse(p.isOpen());
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> p.forward(null, null, null, null, null, RunOptions.defaults()));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertEquals(1, p.runs);
    }

    @Test
    void theHostIsNotADeviceForAnEstimate() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Counting(Device.CPU));
        assertTrue(e.getMessage().contains("host"), e.getMessage());
    }

    /**
     * A backend whose three-argument estimate is {@code plan} and whose default methods are the SPI's
     * own (a proxy: only the limited default is under test).
     */
    private static AttentionBackend estimating(Counting plan) {
        return (AttentionBackend) java.lang.reflect.Proxy.newProxyInstance(AttentionBackend.class.getClassLoader(),
                new Class<?>[] {AttentionBackend.class}, (proxy, method, args) -> {
                    if (method.getName().equals("prepareEstimated") && args.length == 3) {
                        return plan;
                    }
                    if (method.isDefault()) {
                        return java.lang.reflect.InvocationHandler.invokeDefault(proxy, method, args);
                    }
                    throw new UnsupportedOperationException(method.getName());
                });
    }

    @Test
    void theLimitedDefaultClosesAPlanWhoseBoundIsTooHigh() {
        Counting wide = new Counting(FAKE);
        wide.bound = 0.95;
        assertNull(estimating(wide).prepareEstimated(Dense.INSTANCE, CTX, FAKE, 0.9));
        assertFalse(wide.isOpen());
        assertEquals(1, wide.releases);

        Counting narrow = new Counting(FAKE);
        narrow.bound = 0.2;
        assertEquals(narrow, estimating(narrow).prepareEstimated(Dense.INSTANCE, CTX, FAKE, 0.9));
        assertTrue(narrow.isOpen());
        // the bound must be below the limit, not equal to it
        Counting edge = new Counting(FAKE);
        edge.bound = 0.9;
        assertNull(estimating(edge).prepareEstimated(Dense.INSTANCE, CTX, FAKE, 0.9));
        assertFalse(edge.isOpen());
        assertEquals(narrow, estimating(narrow).prepareEstimated(Dense.INSTANCE, CTX, FAKE, Double.POSITIVE_INFINITY));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> estimating(narrow).prepareEstimated(Dense.INSTANCE, CTX, FAKE, Double.NaN));
        assertTrue(e.getMessage().contains("visitedBelow"), e.getMessage());
        assertNull(new OracleBackend().prepareEstimated(Dense.INSTANCE, CTX, FAKE, 0.9));
    }
}
