package dev.sparsa.io;

import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.nio.file.Path;
import java.util.Map;
import java.util.Objects;

/**
 * The contents of a {@code .safetensors} file: its tensors by name (in the header's order) and its
 * optional {@code __metadata__} strings. The arrays are views over the mapped file.
 *
 * @param file where it was read from
 * @param tensors the arrays by name
 * @param metadata the header's {@code __metadata__} (empty when absent)
 */
public record SafetensorsFile(Path file, Map<String, NdArray> tensors, Map<String, String> metadata) {
    public SafetensorsFile {
        Objects.requireNonNull(file, "file");
        tensors = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(tensors));
        metadata = Map.copyOf(metadata);
    }

    /** The array called {@code name}. @throws TensorFileException naming the names the file holds */
    public NdArray get(String name) {
        NdArray a = tensors.get(name);
        if (a == null) {
            throw new TensorFileException(file, "no tensor named '" + name + "'; the file holds " + tensors.keySet());
        }
        return a;
    }

    /** The array called {@code name} as an attention tensor in the given axis order ({@link NdArray#asTensor}). */
    public Tensor tensor(String name, Layout layout) {
        try {
            return get(name).asTensor(layout);
        } catch (TensorFileException e) {
            throw e;
        } catch (IllegalArgumentException e) {
            throw new TensorFileException(file, "tensor '" + name + "': " + e.getMessage());
        }
    }
}
