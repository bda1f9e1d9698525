package dev.sparsa.audit;

import dev.sparsa.patterns.compose.PatternSpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The candidate patterns an audit tries on every head: {@code dense()} (always, the fallback), and
 * for each family a sweep of budgets scaled to the key length {@code n} (about n/16, n/8 and n/4
 * keys per query), or the user's own list.
 */
public final class CandidateSets {
    /** The families a list may name instead of a spec, and what {@link #family} gives for each. */
    public static final List<String> FAMILIES = List.of("sliding-window", "block-sparse", "vertical-slash", "top-k",
            "strided", "lsh");

    private CandidateSets() {
    }

    /** Every family with its budget sweep, after {@code dense()}. */
    public static List<PatternSpec> defaults(int n, boolean causal) {
        List<PatternSpec> out = new ArrayList<>();
        out.add(PatternSpec.of("dense"));
        for (String f : FAMILIES) {
            out.addAll(family(f, n, causal));
        }
        return distinct(out);
    }

    /** A budget of about {@code n·fraction} keys, at least 8, a multiple of 8. */
    static int budget(int n, double fraction) {
        return Math.max(8, (int) Math.round(n * fraction / 8) * 8);
    }

    /** One family's sweep for key length {@code n}. @throws IllegalArgumentException for an unknown family */
    public static List<PatternSpec> family(String family, int n, boolean causal) {
        List<PatternSpec> out = new ArrayList<>();
        double[] fractions = {1.0 / 16, 1.0 / 8, 1.0 / 4};
        int blocks = Math.max(1, (n + 63) / 64);
        switch (family) {
            case "sliding-window" -> {
                for (double f : fractions) {
                    out.add(causal ? PatternSpec.of("aShape", budget(n, f), 4) : PatternSpec.of("symmetricWindow", budget(n, f) / 2, 4));
                }
            }
            case "block-sparse" -> {
                for (double f : new double[] {1.0 / 8, 1.0 / 4, 1.0 / 2}) {
                    out.add(PatternSpec.of("blockTopK", Math.max(1, (int) Math.ceil(blocks * f))));
                }
            }
            case "vertical-slash" -> {
                for (double f : fractions) {
                    out.add(PatternSpec.of("verticalSlash", budget(n, f / 2), budget(n, f / 2)));
                }
            }
            case "top-k" -> {
                for (double f : fractions) {
                    out.add(PatternSpec.of("topK", budget(n, f), 4, 16));
                }
            }
            case "strided" -> {
                for (double f : new double[] {1.0 / 32, 1.0 / 16, 1.0 / 8}) {
                    out.add(PatternSpec.of("strided", budget(n, f)));
                }
            }
            case "lsh" -> {
                out.add(PatternSpec.of("sortLsh", 3, 64, 32));
                out.add(PatternSpec.of("sortLsh", 5, 64, 32));
            }
            default -> throw new IllegalArgumentException("patterns: unknown family '" + family + "'; families: "
                    + String.join(", ", FAMILIES) + ", or a spec name(key=value,...) of " + PatternSpec.names());
        }
        return distinct(out);
    }

    /**
     * The candidates a {@code --patterns} list names: items separated by {@code ;} or by commas outside
     * parentheses, each a family (its sweep) or a spec; {@code dense()} is added first when missing.
     *
     * @throws IllegalArgumentException naming the first item that is neither
     */
    public static List<PatternSpec> parse(String list, int n, boolean causal) {
        List<PatternSpec> out = new ArrayList<>();
        out.add(PatternSpec.of("dense"));
        for (String item : split(list)) {
            if (item.isEmpty()) {
                continue;
            }
            if (item.contains("(")) {
                PatternSpec s = PatternSpec.parse(item);
                s.pattern(); // refuse a bad parameter now, not mid-audit
                out.add(s);
            } else {
                out.addAll(family(item, n, causal));
            }
        }
        return distinct(out);
    }

    /**
     * The streaming pattern whose failure marks a retrieval head: a few sink tokens and a local
     * window of about an eighth of the keys (DuoAttention's streaming heads keep exactly sinks and
     * recent tokens).
     */
    public static PatternSpec streamingProbe(int n, boolean causal) {
        return causal ? PatternSpec.of("aShape", budget(n, 1.0 / 8), 4) : PatternSpec.of("symmetricWindow", budget(n, 1.0 / 16), 4);
    }

    private static List<String> split(String list) {
        List<String> items = new ArrayList<>();
        int depth = 0;
        StringBuilder cur = new StringBuilder();
        for (char c : list.toCharArray()) {
            if (c == '(') {
                depth++;
            } else if (c == ')') {
                depth--;
            }
            if ((c == ';' || c == ',') && depth == 0) {
                items.add(cur.toString().strip());
                cur.setLength(0);
            } else {
                cur.append(c);
            }
        }
        items.add(cur.toString().strip());
        return items;
    }

    private static List<PatternSpec> distinct(List<PatternSpec> specs) {
        Map<String, PatternSpec> m = new LinkedHashMap<>();
        for (PatternSpec s : specs) {
            m.putIfAbsent(s.toString(), s);
        }
        return List.copyOf(m.values());
    }
}
