package dev.sparsa.patterns;

import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;

/**
 * Test helper: the token set a plan admits, read only through {@link HeadLayout#forEachAdmittedKey}
 * over every tile holding each row, with a check that no pair is admitted twice.
 */
final class TokenSets {
    private TokenSets() {
    }

    /** Per row, key → log-weight, for slice (b, h). Fails on a pair admitted twice. */
    static List<TreeMap<Integer, Float>> of(SparsePlan plan, int b, int h) {
        HeadLayout l = plan.layout(b, h);
        List<TreeMap<Integer, Float>> rows = new ArrayList<>();
        for (int r = 0; r < l.queryLength(); r++) {
            rows.add(new TreeMap<>());
        }
        for (int t = 0; t < l.tileCount(); t++) {
            for (int i = 0; i < l.rowCount(t); i++) {
                int r = l.row(t, i);
                TreeMap<Integer, Float> m = rows.get(r);
                l.forEachAdmittedKey(t, r, (k, w) -> {
                    if (m.put(k, w) != null) {
                        throw new AssertionError("pair (" + r + ", " + k + ") admitted twice in " + plan.description());
                    }
                });
            }
        }
        return rows;
    }

    /** Per row, the admitted keys as a sorted int array. */
    static int[][] keys(SparsePlan plan, int b, int h) {
        List<TreeMap<Integer, Float>> m = of(plan, b, h);
        int[][] out = new int[m.size()][];
        for (int r = 0; r < out.length; r++) {
            out[r] = m.get(r).keySet().stream().mapToInt(Integer::intValue).toArray();
        }
        return out;
    }
}
