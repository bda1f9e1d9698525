package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.patterns.topk.ForcedKeys;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** Bad parameters throw IllegalArgumentException whose message names the parameter. */
class ValidationTest {

    private static void throwsNaming(String name, Executable e) {
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e, name);
        assertTrue(ex.getMessage().contains(name), "message '" + ex.getMessage() + "' should name " + name);
    }

    @Test
    void badParametersAreNamed() {
        PlanContext ctx = Definitions.ctx(1, 2, 2, 64, 64, 16, true, 16, 16);
        List<Map.Entry<String, Executable>> cases = new java.util.ArrayList<>();
        cases.add(Map.entry("window", () -> Patterns.slidingWindow(0)));
        cases.add(Map.entry("window", () -> Patterns.slidingWindow(-5)));
        cases.add(Map.entry("sinks", () -> Patterns.aShape(8, -1)));
        cases.add(Map.entry("denseLastRows", () -> Patterns.triShape(8, 1, -2)));
        cases.add(Map.entry("radius", () -> Patterns.symmetricWindow(-1)));
        cases.add(Map.entry("size", () -> Patterns.neighbourhood(0)));
        cases.add(Map.entry("density", () -> Patterns.randomBlockSparse(1.5, 1)));
        cases.add(Map.entry("density", () -> Patterns.randomBlockSparse(Double.NaN, 1)));
        cases.add(Map.entry("queryBlock", () -> Patterns.blockSparse(new boolean[][] {{true}}, 0)));
        cases.add(Map.entry("topBlocks", () -> Patterns.minferenceBlockSparse(0)));
        cases.add(Map.entry("stride", () -> Patterns.s2Strided(0, 1)));
        cases.add(Map.entry("localBlocks", () -> Patterns.s2Strided(2, -1)));
        cases.add(Map.entry("denseHeads", () -> Patterns.s2Strided(2, 1, 0, 5, false).plan(ctx)));
        cases.add(Map.entry("c", () -> Patterns.sparseTransformerFixed(8, 9)));
        cases.add(Map.entry("dilation", () -> Patterns.dilatedWindow(4, 0)));
        cases.add(Map.entry("bits", () -> Patterns.sortLsh(0, 8, 0, 1)));
        cases.add(Map.entry("chunk", () -> Patterns.sortLsh(4, 0, 0, 1)));
        cases.add(Map.entry("samples", () -> Patterns.sortLsh(4, 8, -1, 1)));
        cases.add(Map.entry("rounds", () -> Patterns.reformerLsh(0, 4, 8, 1)));
        cases.add(Map.entry("k", () -> Patterns.topK(0)));
        cases.add(Map.entry("k", () -> Patterns.topKPerQueryBlock(0, 0, 0)));
        cases.add(Map.entry("pageSize", () -> Patterns.quest(0, 2, 0, 0)));
        cases.add(Map.entry("channels", () -> Patterns.doubleSparsity(new int[] {1, 1}, 4, 0, 0)));
        cases.add(Map.entry("verticalBudget", () -> Patterns.verticalSlashEstimate(0, 10, VsSemantics.EXACT)));
        cases.add(Map.entry("slashBudget", () -> Patterns.verticalSlashEstimate(10, 0, VsSemantics.EXACT)));
        cases.add(Map.entry("lastQueries", () -> new VerticalSlashEstimator(10, 10, VsSemantics.EXACT, 0, Double.NaN)));
        cases.add(Map.entry("scale", () -> new VerticalSlashEstimator(10, 10, VsSemantics.EXACT, 64, -1)));
        cases.add(Map.entry("columns", () -> Patterns.verticalSlash(new int[] {-1}, new int[] {0}, VsSemantics.EXACT)));
        cases.add(Map.entry("windows", () -> Patterns.perHeadWindows(new int[] {4, 4, 4}, 0).plan(ctx)));
        cases.add(Map.entry("windows[1]", () -> Patterns.perHeadWindows(new int[] {4, 0}, 0)));
        cases.add(Map.entry("beta", () -> Patterns.elasticWindows(new double[] {1}, new double[] {-1}, 0)));
        cases.add(Map.entry("heads", () -> Patterns.perHead(List.of(Patterns.slidingWindow(3))).plan(ctx)));
        cases.add(Map.entry("parts", () -> Patterns.union()));
        cases.add(Map.entry("blocks", () -> Patterns.blockSparse(new boolean[3][3], 16).plan(ctx)));
        cases.add(Map.entry("scores", () -> Patterns.gateByThreshold(new float[1][2][2], 0.5).plan(ctx)));
        cases.add(Map.entry("ratio", () -> Patterns.gateByRatio(new float[1][4][4], 2)));
        cases.add(Map.entry("q, k", () -> Patterns.topK(3).plan(ctx, null, null)));
        cases.add(Map.entry("sinks", () -> new ForcedKeys(-1, 0)));
        for (Map.Entry<String, Executable> e : cases) {
            throwsNaming(e.getKey(), e.getValue());
        }
        assertThrows(UnsupportedOperationException.class, () -> Patterns.topK(3).plan(ctx));
    }
}
