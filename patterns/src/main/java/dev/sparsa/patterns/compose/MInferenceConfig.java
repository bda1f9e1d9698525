package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.blocksparse.MeanPoolBlockTopK;
import dev.sparsa.patterns.verticalslash.VerticalSlashEstimator;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.patterns.window.SlidingWindow;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads MInference's per-head pattern configuration (the JSON its offline search writes): a list
 * with one object per layer, mapping each head index (a string) to {@code [type, vertical_size,
 * slash_size, score]}. Types, as Sparsa maps them:
 * <ul>
 *   <li>{@code "vertical_and_slash"}: {@link VerticalSlashEstimator} with those budgets;
 *   <li>{@code "stream_llm"}: the A-shape, {@code vertical_size} sinks and a window of {@code
 *       slash_size} keys;
 *   <li>{@code "block_sparse"}: {@link MeanPoolBlockTopK#minference} keeping the best 100 64-token
 *       blocks per query block, whatever the budgets say: MInference's {@code block_sparse_kernel}
 *       ({@code minference/modules/minference_forward.py}) always calls its block-sparse attention
 *       with {@code topk = 100}.
 * </ul>
 * The score is ignored. Each layer must list heads {@code 0..H−1} exactly once.
 */
public final class MInferenceConfig {
    /** The key blocks MInference's {@code block_sparse} heads keep per query block. */
    public static final int BLOCK_SPARSE_TOP_K = 100;

    private MInferenceConfig() {
    }

    /** Reads a file. @throws IllegalArgumentException for a malformed file, @throws IOException if unreadable */
    public static PerLayer load(Path file, VsSemantics semantics) throws IOException {
        return parse(Files.readString(file), semantics);
    }

    /**
     * Parses the JSON text.
     *
     * @throws IllegalArgumentException naming the layer and head of the first bad entry (unknown
     *     type, budget &lt; 1, missing or repeated head, wrong entry shape) or the JSON syntax error
     */
    public static PerLayer parse(String json, VsSemantics semantics) {
        Object root = Json.parse(json);
        if (!(root instanceof List<?> layers) || layers.isEmpty()) {
            throw new IllegalArgumentException("config: expected a non-empty JSON list of layers");
        }
        List<Pattern> out = new ArrayList<>();
        for (int l = 0; l < layers.size(); l++) {
            if (!(layers.get(l) instanceof Map<?, ?> heads) || heads.isEmpty()) {
                throw new IllegalArgumentException("config: layer " + l + " must be a non-empty object of heads");
            }
            Pattern[] perHead = new Pattern[heads.size()];
            for (Map.Entry<?, ?> e : heads.entrySet()) {
                int h;
                try {
                    h = Integer.parseInt((String) e.getKey());
                } catch (NumberFormatException ex) {
                    throw new IllegalArgumentException("config: layer " + l + " has a non-integer head key '" + e.getKey() + "'");
                }
                if (h < 0 || h >= perHead.length) {
                    throw new IllegalArgumentException("config: layer " + l + " head " + h + " outside [0, " + perHead.length
                            + "): heads must be numbered 0..H-1");
                }
                if (perHead[h] != null) {
                    throw new IllegalArgumentException("config: layer " + l + " lists head " + h + " twice");
                }
                perHead[h] = entry(l, h, e.getValue(), semantics);
            }
            out.add(new PerHead(List.of(perHead)));
        }
        return new PerLayer(out);
    }

    private static Pattern entry(int l, int h, Object v, VsSemantics semantics) {
        String where = "config: layer " + l + " head " + h;
        if (!(v instanceof List<?> e) || e.size() < 3 || !(e.get(0) instanceof String type)
                || !(e.get(1) instanceof Double vs) || !(e.get(2) instanceof Double ss)) {
            throw new IllegalArgumentException(where + ": expected [type, vertical_size, slash_size, score], got " + v);
        }
        if (vs < 1 || ss < 1 || vs != Math.rint(vs) || ss != Math.rint(ss)) {
            throw new IllegalArgumentException(where + ": budgets must be integers >= 1, got " + vs + " and " + ss);
        }
        int vi = (int) Math.min(Integer.MAX_VALUE, vs);
        int si = (int) Math.min(Integer.MAX_VALUE, ss);
        return switch (type) {
            case "vertical_and_slash" -> VerticalSlashEstimator.of(vi, si, semantics);
            case "stream_llm" -> SlidingWindow.of(si).withSinks(vi);
            case "block_sparse" -> MeanPoolBlockTopK.minference(BLOCK_SPARSE_TOP_K);
            default -> throw new IllegalArgumentException(where + ": unknown type '" + type
                    + "' (expected vertical_and_slash, stream_llm or block_sparse)");
        };
    }
}
