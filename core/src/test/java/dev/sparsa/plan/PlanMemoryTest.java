package dev.sparsa.plan;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** A plan that cannot fit in the heap is refused at once, with a message, before planning starts. */
class PlanMemoryTest {

    @Test
    void aPlanTooLargeForTheHeapIsRefusedBeforeAnythingIsBuilt() {
        // 2^31 - 1 rows in 8-row tiles: 268 M tiles, tens of GB for the tile table alone
        PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, Integer.MAX_VALUE, Integer.MAX_VALUE, 8, 8),
                Options.causalMask().withGeometry(new TileGeometry(8, 8)));
        IllegalArgumentException e = assertTimeoutPreemptively(Duration.ofSeconds(20),
                () -> assertThrows(IllegalArgumentException.class, () -> Dense.INSTANCE.plan(ctx)));
        assertTrue(e.getMessage().startsWith("queryLength: ") && e.getMessage().contains("MB of heap"), e.getMessage());
    }

    @Test
    void ordinaryPlansPassTheCheck() {
        PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, 100_000, 100_000, 8, 8), Options.causalMask());
        HeadLayout.requireHeapFor(ctx);
    }
}
