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

    /** Counts its runs and releases. */
    private static final class Counting extends EstimatedPlan {
        int runs;
        int releases;

        Counting(Device device) {
            super(Dense.INSTANCE, CTX, new OracleBackend(), device);
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
}
