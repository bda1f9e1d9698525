package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Matcher;

/**
 * A pattern written as text, {@code name(key=value, ...)} with integer values: the form pattern
 * configuration files and the command line use. Names and their parameters:
 * <table>
 *   <caption>pattern specs</caption>
 *   <tr><th>spec</th><th>pattern</th><th>family</th></tr>
 *   <tr><td>{@code dense()}</td><td>{@link Patterns#dense()}</td><td>dense</td></tr>
 *   <tr><td>{@code aShape(window, sinks)}</td><td>{@link Patterns#aShape}: the last {@code window} keys and the first
 *       {@code sinks} (StreamingLLM)</td><td>sliding-window</td></tr>
 *   <tr><td>{@code symmetricWindow(radius, sinks)}</td><td>{@link Patterns#symmetricWindow} keys within {@code radius},
 *       united with {@code sinks} global key columns (an encoder's local attention)</td><td>sliding-window</td></tr>
 *   <tr><td>{@code blockTopK(blocks)}</td><td>{@link Patterns#minferenceBlockSparse}: the top {@code blocks} 64-key
 *       blocks by mean-pooled scores, and the diagonal</td><td>block-sparse</td></tr>
 *   <tr><td>{@code verticalSlash(vertical, slash)}</td><td>{@link Patterns#verticalSlashEstimate}, block-expanded
 *       (MInference's kernel semantics)</td><td>vertical-slash</td></tr>
 *   <tr><td>{@code topK(k, sinks, window)}</td><td>{@link Patterns#topKPerQueryBlock}</td><td>top-k</td></tr>
 *   <tr><td>{@code strided(l)}</td><td>{@link Patterns#sparseTransformerStrided}</td><td>strided</td></tr>
 *   <tr><td>{@code sortLsh(bits, chunk, samples)}</td><td>{@link Patterns#sortLsh} with seed 11</td><td>lsh</td></tr>
 * </table>
 * Every parameter must be given. {@link #toString()} writes the canonical form that {@link #parse}
 * reads back. Throws {@link IllegalArgumentException} for an unknown name, a missing, extra or
 * negative parameter.
 *
 * @param name the spec's name
 * @param params the parameters in the order the table lists them
 */
public record PatternSpec(String name, Map<String, Integer> params) {
    private static final Map<String, List<String>> PARAMS = Map.of(
            "dense", List.of(),
            "aShape", List.of("window", "sinks"),
            "symmetricWindow", List.of("radius", "sinks"),
            "blockTopK", List.of("blocks"),
            "verticalSlash", List.of("vertical", "slash"),
            "topK", List.of("k", "sinks", "window"),
            "strided", List.of("l"),
            "sortLsh", List.of("bits", "chunk", "samples"));
    private static final Map<String, String> FAMILY = Map.of(
            "dense", "dense", "aShape", "sliding-window", "symmetricWindow", "sliding-window", "blockTopK", "block-sparse",
            "verticalSlash", "vertical-slash", "topK", "top-k", "strided", "strided", "sortLsh", "lsh");
    private static final java.util.regex.Pattern SYNTAX =
            java.util.regex.Pattern.compile("\\s*([A-Za-z]+)\\s*\\((.*)\\)\\s*");

    public PatternSpec {
        Objects.requireNonNull(name, "name");
        List<String> expected = PARAMS.get(name);
        if (expected == null) {
            throw new IllegalArgumentException("pattern: unknown name '" + name + "'; known: " + String.join(", ", names()));
        }
        if (!params.keySet().equals(new java.util.HashSet<>(expected))) {
            throw new IllegalArgumentException("pattern " + name + ": takes " + expected + ", got " + params.keySet());
        }
        Map<String, Integer> ordered = new LinkedHashMap<>();
        for (String k : expected) {
            int v = params.get(k);
            if (v < 0) {
                throw new IllegalArgumentException("pattern " + name + ": " + k + " must be >= 0, got " + v);
            }
            ordered.put(k, v);
        }
        params = java.util.Collections.unmodifiableMap(ordered);
    }

    /** The spec names, sorted. */
    public static List<String> names() {
        return PARAMS.keySet().stream().sorted().toList();
    }

    /** A spec from its name and its parameters in the table's order. */
    public static PatternSpec of(String name, int... values) {
        List<String> keys = PARAMS.get(name);
        if (keys == null || keys.size() != values.length) {
            throw new IllegalArgumentException("pattern " + name + ": takes " + keys + ", got " + values.length + " values");
        }
        Map<String, Integer> m = new LinkedHashMap<>();
        for (int i = 0; i < values.length; i++) {
            m.put(keys.get(i), values[i]);
        }
        return new PatternSpec(name, m);
    }

    /** Parses {@code name(key=value, ...)}. @throws IllegalArgumentException naming what is wrong */
    public static PatternSpec parse(String text) {
        Matcher m = SYNTAX.matcher(text == null ? "" : text);
        if (!m.matches()) {
            throw new IllegalArgumentException("pattern: expected name(key=value, ...), got '" + text + "'");
        }
        Map<String, Integer> params = new LinkedHashMap<>();
        String body = m.group(2).strip();
        if (!body.isEmpty()) {
            for (String part : body.split(",")) {
                String[] kv = part.split("=", -1);
                if (kv.length != 2) {
                    throw new IllegalArgumentException("pattern '" + text + "': expected key=value, got '" + part.strip() + "'");
                }
                try {
                    if (params.put(kv[0].strip(), Integer.parseInt(kv[1].strip())) != null) {
                        throw new IllegalArgumentException("pattern '" + text + "': " + kv[0].strip() + " given twice");
                    }
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException("pattern '" + text + "': " + kv[0].strip() + " must be an integer, got '"
                            + kv[1].strip() + "'");
                }
            }
        }
        return new PatternSpec(m.group(1), params);
    }

    /** The family the pattern belongs to (the families of docs/patterns.md, and dense). */
    public String family() {
        return FAMILY.get(name);
    }

    private int p(String key) {
        return params.get(key);
    }

    /** The pattern this spec names. @throws IllegalArgumentException if the factory refuses a parameter */
    public Pattern pattern() {
        return switch (name) {
            case "dense" -> Patterns.dense();
            case "aShape" -> Patterns.aShape(p("window"), p("sinks"));
            case "symmetricWindow" -> {
                Pattern local = Patterns.symmetricWindow(p("radius"));
                int sinks = p("sinks");
                yield sinks == 0 ? local
                        : Patterns.union(local, Patterns.globalTokens(new int[0], java.util.stream.IntStream.range(0, sinks).toArray()));
            }
            case "blockTopK" -> Patterns.minferenceBlockSparse(p("blocks"));
            case "verticalSlash" -> Patterns.verticalSlashEstimate(p("vertical"), p("slash"), VsSemantics.BLOCK_EXPANDED);
            case "topK" -> Patterns.topKPerQueryBlock(p("k"), p("sinks"), p("window"));
            case "strided" -> Patterns.sparseTransformerStrided(p("l"));
            case "sortLsh" -> Patterns.sortLsh(p("bits"), p("chunk"), p("samples"), 11);
            default -> throw new IllegalStateException(name);
        };
    }

    @Override
    public String toString() {
        StringBuilder b = new StringBuilder(name).append('(');
        params.forEach((k, v) -> b.append(b.charAt(b.length() - 1) == '(' ? "" : ",").append(k).append('=').append(v));
        return b.append(')').toString();
    }
}
