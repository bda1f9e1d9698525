package dev.sparsa.io;

import dev.sparsa.tensor.DType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Hugging Face's {@code .safetensors} format: an 8-byte little-endian header length, a JSON header
 * mapping each tensor name to {@code {"dtype", "shape", "data_offsets": [begin, end]}} (offsets into
 * the byte buffer that follows), and an optional {@code "__metadata__"} object of strings.
 *
 * <p>Types {@code F32}, {@code F16} and {@code BF16} are read; any other ({@code F64}, integers, FP8,
 * {@code BOOL}) is refused naming the tensor. The header is checked as the format's reference
 * implementation checks it: offsets inside the buffer, each tensor's byte count equal to its shape's,
 * and the tensors tiling the buffer without gaps or overlaps. Reading maps the file; each array is a
 * view of its pages.
 */
public final class Safetensors {
    /** The reference implementation refuses headers above 100 MB. */
    private static final long MAX_HEADER = 100_000_000L;

    private Safetensors() {
    }

    /** Reads a file, mapped in an automatic arena (unmapped once no array of it is reachable). */
    public static SafetensorsFile read(Path file) throws IOException {
        return read(file, Arena.ofAuto());
    }

    /**
     * Reads a file, mapping it in {@code arena}.
     *
     * @throws TensorFileException for a malformed header, a truncated file or an unsupported dtype
     * @throws IOException if the file cannot be opened or read
     */
    public static SafetensorsFile read(Path file, Arena arena) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(arena, "arena");
        Npy.requireLittleEndianPlatform();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw new TensorFileException(file, "not a .safetensors file (" + size + " bytes, shorter than its 8-byte header length)");
            }
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            Npy.readFully(ch, len, 0);
            long headerLength = len.getLong(0);
            if (headerLength < 2 || headerLength > MAX_HEADER) {
                throw new TensorFileException(file, "bad .safetensors header length " + Long.toUnsignedString(headerLength)
                        + " (not a .safetensors file?)");
            }
            if (8 + headerLength > size) {
                throw new TensorFileException(file, "truncated: the header declares " + headerLength + " bytes, the file has "
                        + (size - 8) + " after the length");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLength);
            Npy.readFully(ch, hb, 8);
            String text = new String(hb.array(), StandardCharsets.UTF_8);
            if (!text.startsWith("{")) {
                throw new TensorFileException(file, "bad .safetensors header: it does not start with '{'");
            }
            Object root;
            try {
                root = HeaderJson.parse(text);
            } catch (IllegalArgumentException e) {
                throw new TensorFileException(file, "bad .safetensors header: " + e.getMessage());
            }
            if (!(root instanceof Map<?, ?> entries)) {
                throw new TensorFileException(file, "bad .safetensors header: not a JSON object");
            }
            long bufferStart = 8 + headerLength;
            long buffer = size - bufferStart;
            MemorySegment mapped = buffer == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, bufferStart, buffer, arena);
            Map<String, NdArray> tensors = new LinkedHashMap<>();
            Map<String, String> metadata = new LinkedHashMap<>();
            List<long[]> spans = new ArrayList<>();
            for (Map.Entry<?, ?> e : entries.entrySet()) {
                String name = (String) e.getKey();
                if (name.equals("__metadata__")) {
                    metadata(file, e.getValue(), metadata);
                    continue;
                }
                Entry t = entry(file, name, e.getValue());
                if (t.end > buffer) {
                    throw new TensorFileException(file, "truncated: tensor '" + name + "' ends at byte " + t.end
                            + " of the data, the file holds " + buffer);
                }
                spans.add(new long[] {t.begin, t.end});
                tensors.put(name, new NdArray(t.dtype, t.shape, mapped.asSlice(t.begin, t.end - t.begin)));
            }
            checkTiling(file, spans, buffer);
            return new SafetensorsFile(file, tensors, metadata);
        }
    }

    /**
     * Writes tensors by name (in the map's order) and metadata strings, replacing the file. The header
     * is padded with spaces to a multiple of 8 bytes, so every tensor's data starts aligned.
     */
    public static void write(Path file, Map<String, NdArray> tensors, Map<String, String> metadata) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(metadata, "metadata");
        Npy.requireLittleEndianPlatform();
        StringBuilder h = new StringBuilder("{");
        if (!metadata.isEmpty()) {
            h.append("\"__metadata__\":{");
            boolean first = true;
            for (Map.Entry<String, String> m : metadata.entrySet()) {
                h.append(first ? "" : ",").append(HeaderJson.quote(m.getKey())).append(':').append(HeaderJson.quote(m.getValue()));
                first = false;
            }
            h.append('}');
        }
        long offset = 0;
        for (Map.Entry<String, NdArray> t : tensors.entrySet()) {
            if (t.getKey().equals("__metadata__")) {
                throw new IllegalArgumentException("tensors: the name __metadata__ is reserved");
            }
            NdArray a = t.getValue();
            long end = offset + a.data().byteSize();
            h.append(h.length() > 1 ? "," : "").append(HeaderJson.quote(t.getKey())).append(":{\"dtype\":\"")
                    .append(name(a.dtype())).append("\",\"shape\":").append(Arrays.toString(a.shape()).replace(" ", ""))
                    .append(",\"data_offsets\":[").append(offset).append(',').append(end).append("]}");
            offset = end;
        }
        h.append('}');
        byte[] json = h.toString().getBytes(StandardCharsets.UTF_8);
        int padded = json.length + (8 - json.length % 8) % 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        head.flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            Npy.writeFully(ch, head);
            for (NdArray a : tensors.values()) {
                Npy.writeSegment(ch, a.data());
            }
        }
    }

    /** The format's name of a type. */
    static String name(DType t) {
        return switch (t) {
            case F32 -> "F32";
            case F16 -> "F16";
            case BF16 -> "BF16";
            case E4M3 -> "F8_E4M3";
        };
    }

    private record Entry(DType dtype, long[] shape, long begin, long end) {
    }

    private static Entry entry(Path file, String name, Object v) {
        String where = "tensor '" + name + "'";
        if (!(v instanceof Map<?, ?> m)) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + " is not an object");
        }
        if (!(m.get("dtype") instanceof String dtype)) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + " has no string \"dtype\"");
        }
        DType t = switch (dtype) {
            case "F32" -> DType.F32;
            case "F16" -> DType.F16;
            case "BF16" -> DType.BF16;
            case "F8_E4M3" -> DType.E4M3;
            default -> throw new TensorFileException(file, where + " has unsupported dtype " + dtype
                    + " (Sparsa reads F32, F16, BF16 and F8_E4M3)");
        };
        long[] shape = longs(file, where, "shape", m.get("shape"), -1);
        long[] offsets = longs(file, where, "data_offsets", m.get("data_offsets"), 2);
        long count;
        try {
            count = NdArray.count(shape);
        } catch (IllegalArgumentException e) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + ": " + e.getMessage());
        }
        long begin = offsets[0];
        long end = offsets[1];
        if (begin > end) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + " has data_offsets [" + begin + ", "
                    + end + "] (begin after end)");
        }
        if (count > Long.MAX_VALUE / t.byteSize() || end - begin != count * t.byteSize()) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + " of shape " + Arrays.toString(shape)
                    + " in " + dtype + " needs " + count * t.byteSize() + " bytes, its data_offsets span " + (end - begin));
        }
        return new Entry(t, shape, begin, end);
    }

    private static long[] longs(Path file, String where, String key, Object v, int length) {
        if (!(v instanceof List<?> l) || (length >= 0 && l.size() != length)) {
            throw new TensorFileException(file, "bad .safetensors header: " + where + " has no " + key + " list"
                    + (length >= 0 ? " of " + length + " integers" : ""));
        }
        long[] out = new long[l.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(l.get(i) instanceof Long x) || x < 0) {
                throw new TensorFileException(file, "bad .safetensors header: " + where + " " + key + "[" + i
                        + "] is not a non-negative integer: " + l.get(i));
            }
            out[i] = x;
        }
        return out;
    }

    private static void metadata(Path file, Object v, Map<String, String> into) {
        if (!(v instanceof Map<?, ?> m)) {
            throw new TensorFileException(file, "bad .safetensors header: __metadata__ is not an object");
        }
        for (Map.Entry<?, ?> e : m.entrySet()) {
            if (!(e.getValue() instanceof String s)) {
                throw new TensorFileException(file, "bad .safetensors header: __metadata__ value of '" + e.getKey()
                        + "' is not a string");
            }
            into.put((String) e.getKey(), s);
        }
    }

    /** The tensors' byte ranges must cover {@code [0, buffer)} exactly, without gaps or overlaps. */
    private static void checkTiling(Path file, List<long[]> spans, long buffer) {
        spans.sort((a, b) -> a[0] != b[0] ? Long.compare(a[0], b[0]) : Long.compare(a[1], b[1]));
        long at = 0;
        for (long[] s : spans) {
            if (s[0] != at) {
                throw new TensorFileException(file, "bad .safetensors header: tensor data " + (s[0] < at ? "overlaps" : "has a gap")
                        + " at byte " + Math.min(s[0], at) + " of the data");
            }
            at = s[1];
        }
        if (at != buffer) {
            throw new TensorFileException(file, "bad .safetensors header: the tensors cover " + at + " bytes of data, the file holds "
                    + buffer);
        }
    }
}
