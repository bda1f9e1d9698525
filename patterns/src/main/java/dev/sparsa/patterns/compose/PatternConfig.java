package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads a per-layer, per-head pattern configuration, the {@code config.json} that {@code sparsa
 * audit} writes:
 * <pre>{@code
 * {"format": "sparsa-pattern-config", "version": 1,
 *  "layers": [{"layer": 0, "heads": [{"head": 0, "pattern": "aShape(window=64,sinks=4)", ...}, ...]}, ...]}
 * }</pre>
 * Layers and heads are listed in order from 0; each head's {@code "pattern"} is a {@link PatternSpec};
 * other keys (the audit's recall and density) are informational and ignored.
 */
public final class PatternConfig {
    /** The value of {@code "format"}. */
    public static final String FORMAT = "sparsa-pattern-config";

    private PatternConfig() {
    }

    /**
     * Parses the JSON text into one {@link PerHead} pattern per layer.
     *
     * @throws IllegalArgumentException naming the layer and head of the first bad entry, or the JSON
     *     syntax error
     */
    public static PerLayer parse(String json) {
        Object root = Json.parse(json);
        if (!(root instanceof Map<?, ?> top) || !FORMAT.equals(top.get("format"))) {
            throw new IllegalArgumentException("config: expected a JSON object with \"format\": \"" + FORMAT + "\"");
        }
        if (!(top.get("version") instanceof Double v) || v != 1) {
            throw new IllegalArgumentException("config: unsupported version " + top.get("version") + " (this reader takes 1)");
        }
        if (!(top.get("layers") instanceof List<?> layers) || layers.isEmpty()) {
            throw new IllegalArgumentException("config: \"layers\" must be a non-empty list");
        }
        List<Pattern> out = new ArrayList<>();
        for (int l = 0; l < layers.size(); l++) {
            if (!(layers.get(l) instanceof Map<?, ?> layer) || !(layer.get("heads") instanceof List<?> heads) || heads.isEmpty()) {
                throw new IllegalArgumentException("config: layer " + l + " must be an object with a non-empty \"heads\" list");
            }
            List<Pattern> perHead = new ArrayList<>();
            for (int h = 0; h < heads.size(); h++) {
                String where = "config: layer " + l + " head " + h;
                if (!(heads.get(h) instanceof Map<?, ?> head) || !(head.get("pattern") instanceof String spec)) {
                    throw new IllegalArgumentException(where + ": expected an object with a string \"pattern\"");
                }
                try {
                    perHead.add(PatternSpec.parse(spec).pattern());
                } catch (IllegalArgumentException e) {
                    throw new IllegalArgumentException(where + ": " + e.getMessage());
                }
            }
            out.add(new PerHead(perHead));
        }
        return new PerLayer(out);
    }
}
