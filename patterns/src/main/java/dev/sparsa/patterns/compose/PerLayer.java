package dev.sparsa.patterns.compose;

import dev.sparsa.pattern.Pattern;
import java.util.List;

/**
 * A pattern per model layer (MInference's and DuoAttention's configs assign patterns layer by layer).
 * Immutable.
 *
 * <p>Throws {@link IllegalArgumentException} if the list is empty or holds null
 */
public final class PerLayer {
    private final List<Pattern> layers;

    public PerLayer(List<? extends Pattern> layers) {
        if (layers == null || layers.isEmpty()) {
            throw new IllegalArgumentException("layers: need at least one layer's pattern");
        }
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i) == null) {
                throw new IllegalArgumentException("layers[" + i + "]: must not be null");
            }
        }
        this.layers = List.copyOf(layers);
    }

    public int layerCount() {
        return layers.size();
    }

    /** The pattern of layer {@code layer}. @throws IllegalArgumentException for an index out of range */
    public Pattern forLayer(int layer) {
        if (layer < 0 || layer >= layers.size()) {
            throw new IllegalArgumentException("layer: index " + layer + " outside [0, " + layers.size() + ")");
        }
        return layers.get(layer);
    }

    public List<Pattern> layers() {
        return layers;
    }
}
