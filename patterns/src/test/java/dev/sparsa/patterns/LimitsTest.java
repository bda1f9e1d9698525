package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.testing.Problems;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Patterns at the limits of their inputs: no query or no key, parameters far larger than the
 * sequence (which must cost what the sequence costs, not what the parameter says), and hostile
 * configuration text.
 */
class LimitsTest {
    private static final int HUGE = Integer.MAX_VALUE;

    private static SparsePlan plan(Pattern p, PlanContext ctx) {
        Problems.Qkv qkv = Problems.qkv(1, ctx.shape(), DType.F32, Layout.BHSD);
        return p.dataDependent() ? p.plan(ctx, qkv.q(), qkv.k()) : p.plan(ctx);
    }

    @Test
    void estimatorsPlanNoQueriesAndNoKeys() {
        for (int[] nqk : new int[][] {{0, 50}, {50, 0}, {0, 0}}) {
            for (boolean causal : new boolean[] {true, false}) {
                PlanContext ctx = Definitions.ctx(1, 2, 1, nqk[0], nqk[1], 8, causal, 16, 16);
                for (Pattern p : new Pattern[] {Patterns.reformerLsh(2, 4, 16, 3), Patterns.sortLsh(4, 16, 4, 3),
                    Patterns.minferenceBlockSparse(3), Patterns.verticalSlashEstimate(5, 5, VsSemantics.BLOCK_EXPANDED),
                    Patterns.topKPerQueryBlock(4, 1, 2), Patterns.quest(4, 8), Patterns.topK(3), Patterns.tokenSelect(2, 1, 1),
                    Patterns.moba(16, 2), Patterns.nsaSelection(16, 2), Patterns.lightningIndexerProjected(4, 2, 8, 1),
                    Patterns.xAttention(16, 4, 0.9), Patterns.routing(2, 8, 1, 1), Patterns.meanPoolBlockTopP(0.9, 16),
                    Patterns.verticalSlashEstimateTopP(0.9, 4, 8, VsSemantics.BLOCK_EXPANDED)}) {
                    assertEquals(0, plan(p, ctx).pairsAdmitted(), p.name() + " " + nqk[0] + "x" + nqk[1]);
                }
            }
        }
    }

    @Test
    void parametersBeyondTheSequenceCostWhatTheSequenceCosts() {
        PlanContext causal = Definitions.ctx(1, 2, 1, 100, 100, 8, true, 16, 16);
        long dense = Patterns.dense().plan(causal).pairsAdmitted();
        Map<String, Pattern> wide = new LinkedHashMap<>();
        wide.put("sparse transformer strided", Patterns.sparseTransformerStrided(HUGE));
        wide.put("dilated window", Patterns.dilatedWindow(HUGE, 1));
        wide.put("mean-pool block top-k", Patterns.meanPoolBlockTopK(HUGE, HUGE, false));
        wide.put("bi-level routing", Patterns.biLevelRouting(HUGE, HUGE));
        wide.put("window", Patterns.aShape(HUGE, HUGE));
        wide.put("s2", Patterns.s2Strided(HUGE, HUGE).withBlockSize(HUGE));
        wide.put("top-k", Patterns.topK(HUGE, HUGE, HUGE));
        wide.put("quest", Patterns.quest(HUGE, HUGE));
        wide.put("sortLSH samples", Patterns.sortLsh(4, HUGE, HUGE, 1));
        wide.put("moba", Patterns.moba(HUGE, HUGE));
        wide.put("nsa selection", Patterns.nsaSelection(HUGE, HUGE));
        wide.put("dsa indexer", Patterns.lightningIndexerProjected(HUGE, 1, 8, 1));
        wide.put("xattention", Patterns.xAttention(HUGE, HUGE, 1.0));
        wide.put("routing", Patterns.routing(1, HUGE, 1, 1));
        wide.put("block estimate top-p", Patterns.meanPoolBlockTopP(1.0, HUGE));
        wide.put("vertical-slash top-p", Patterns.verticalSlashEstimateTopP(1.0, HUGE, HUGE, VsSemantics.EXACT));
        for (Map.Entry<String, Pattern> e : wide.entrySet()) {
            SparsePlan p = assertTimeoutPreemptively(Duration.ofSeconds(10), () -> plan(e.getValue(), causal), e.getKey());
            if (!e.getKey().startsWith("sortLSH")) {
                assertEquals(dense, p.pairsAdmitted(), e.getKey() + " with a huge parameter is dense attention");
            }
        }
    }

    @Test
    void deeplyNestedConfigurationIsRefusedNotAStackOverflow() {
        String deep = "[".repeat(200_000) + "]".repeat(200_000);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.minferenceConfig(deep, VsSemantics.EXACT));
        assertTrue(e.getMessage().contains("nested deeper than"), e.getMessage());
        String deepObjects = "[{\"0\": ".repeat(1000) + "1" + "}]".repeat(1000);
        assertThrows(IllegalArgumentException.class, () -> Patterns.minferenceConfig(deepObjects, VsSemantics.EXACT));
    }
}
