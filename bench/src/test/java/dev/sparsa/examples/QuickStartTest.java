package dev.sparsa.examples;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.reference.ReferenceAttention;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.spec.Options;
import org.junit.jupiter.api.Test;

class QuickStartTest {

    @Test
    void theReadmeExampleComputesTheWindowedAttention() {
        QuickStart.Outcome o = QuickStart.run(1, 2, 300, 32);
        QuickStart.Outcome same = QuickStart.run(1, 2, 300, 32);
        assertArrayEquals(o.windowed().toFloatArray(), same.windowed().toFloatArray(), "deterministic");
        assertArrayEquals(o.windowed().toFloatArray(), o.replayed().toFloatArray(), "plan reuse gives the same output");
        assertArrayEquals(o.windowed().toFloatArray(), o.withLse().output().toFloatArray());
        var plan = o.plan();
        ReferenceResult ref = ReferenceAttention.plan(plan, o.q(), o.k(), o.v(), Options.causalMask());
        assertTrue(ref.maxRelativeError(o.windowed()) <= 1e-5);
        assertTrue(ref.maxLseError(o.withLse().lse()) <= 1e-4);
        // the window's meaning, written independently: keys in (p - 256, p] or among the first 16
        ReferenceResult byDefinition = ReferenceAttention.dense(o.q(), o.k(), o.v(), Options.causalMask(),
                (b, h, q, k) -> k < 16 || q - k < 256);
        assertTrue(byDefinition.maxRelativeError(o.windowed()) <= 1e-5, "window 256 + 16 sinks");
    }
}
