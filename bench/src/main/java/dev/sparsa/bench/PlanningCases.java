package dev.sparsa.bench;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.verticalslash.VsSemantics;

/**
 * The patterns whose planning cost is measured ({@link PlanningBench}, {@link PlanVsKernel}), by
 * name, configured for a sequence of {@code n} tokens. One table, so the JMH numbers and the
 * plan-versus-kernel ratios in docs/patterns.md describe the same plans.
 */
final class PlanningCases {
    private PlanningCases() {
    }

    /**
     * @throws IllegalArgumentException for an unknown name
     */
    static Pattern pattern(String name, int n) {
        int[] cols = new int[1000];
        for (int i = 0; i < cols.length; i++) {
            cols[i] = (int) ((long) i * n / cols.length);
        }
        int[] diags = new int[600];
        for (int i = 0; i < diags.length; i++) {
            diags[i] = i < 100 ? i : (int) ((long) i * n / 2 / diags.length);
        }
        return switch (name) {
            case "aShape" -> Patterns.aShape(4096, 128);
            case "triShape" -> Patterns.triShape(4096, 128, 128);
            case "randomBlockSparse" -> Patterns.randomBlockSparse(0.10, 7);
            case "s2Strided" -> Patterns.s2Strided(8, 8);
            case "sparseTransformerStrided" -> Patterns.sparseTransformerStrided(128);
            case "dilatedWindow" -> Patterns.dilatedWindow(2048, 2);
            case "neighbourhood" -> Patterns.neighbourhood(4096);
            case "verticalSlashBlockExpanded" -> Patterns.verticalSlash(cols, diags, VsSemantics.BLOCK_EXPANDED);
            case "verticalSlashExact" -> Patterns.verticalSlash(cols, diags, VsSemantics.EXACT);
            case "unionAShapeVerticalSlash" -> Patterns.union(Patterns.aShape(1024, 64),
                    Patterns.verticalSlash(cols, new int[0], VsSemantics.EXACT));
            case "minferenceBlockEstimate" -> Patterns.minferenceBlockSparse(32);
            case "verticalSlashEstimate" -> Patterns.verticalSlashEstimate(1000, 600, VsSemantics.BLOCK_EXPANDED);
            case "sortLsh" -> Patterns.sortLsh(8, 64, 256, 11);
            case "reformerLsh" -> Patterns.reformerLsh(2, 8, 64, 13);
            case "topKPerQueryBlock" -> Patterns.topKPerQueryBlock(2048, 128, 512);
            case "moba" -> Patterns.moba(512, 3);
            case "nsaSelection" -> Patterns.nsaSelection(64, 16);
            case "dsaIndexer" -> Patterns.lightningIndexerProjected(2048, 4, 32, 5);
            case "xattention" -> Patterns.xAttention(128, 16, 0.9);
            case "routing" -> Patterns.routing(16, n / 16, 3, 9);
            case "meanPoolTopP" -> Patterns.meanPoolBlockTopP(0.9, 64);
            case "verticalSlashTopP" -> Patterns.verticalSlashEstimateTopP(0.95, 64, 2000, VsSemantics.BLOCK_EXPANDED);
            default -> throw new IllegalArgumentException("pattern: unknown " + name);
        };
    }
}
