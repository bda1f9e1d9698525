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
        assertArrayEquals(o.windowed().toFloatArray(), o.withLse().output().toFloatArray());
        // the drop-in call ran what its dispatch chose (the window's plan, or a superset of it): the oracle of that plan
        var ran = o.withLse().decision().plan();
        ReferenceResult ref = ReferenceAttention.plan(ran, o.q(), o.k(), o.v(), Options.causalMask());
        assertTrue(ref.maxRelativeError(o.windowed()) <= 1e-5, o.withLse().decision().toString());
        assertTrue(ref.maxLseError(o.withLse().lse()) <= 1e-4);
        assertTrue(ran.pairsAdmitted() >= o.plan().pairsAdmitted());
        // the window's own plan, replayed: its meaning, written independently: keys in (p - 256, p] or among the first 16
        ReferenceResult byDefinition = ReferenceAttention.dense(o.q(), o.k(), o.v(), Options.causalMask(),
                (b, h, q, k) -> k < 16 || q - k < 256);
        assertTrue(byDefinition.maxRelativeError(o.replayed()) <= 1e-5, "window 256 + 16 sinks");
    }
}
