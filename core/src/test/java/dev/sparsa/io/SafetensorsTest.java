package dev.sparsa.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Safetensors} against a file laid out by the format's description in Python, and its own writer. */
class SafetensorsTest {
    @TempDir
    Path dir;

    @Test
    void readsEveryTypeByNameWithMetadata() throws IOException {
        SafetensorsFile f = Safetensors.read(NpyTest.fixture("spec_qkv.safetensors"));
        assertEquals(List.of("q", "k", "v"), List.copyOf(f.tensors().keySet()));
        assertEquals(Map.of("made_by", "numpy"), f.metadata());
        assertEquals(DType.F32, f.get("q").dtype());
        assertEquals(DType.F16, f.get("k").dtype());
        assertEquals(DType.BF16, f.get("v").dtype());
        for (String name : List.of("q", "k", "v")) {
            Tensor t = f.tensor(name, Layout.BHSD);
            assertArrayEquals(new int[] {1, 2, 4, 8}, t.shape());
            assertEquals(NpyTest.expected(((1 * 4) + 2) * 8 + 7), t.get(0, 1, 2, 7), name);
            assertTrue(t.segment().isMapped(), name + " is a view of the mapped file");
        }
        TensorFileException e = assertThrows(TensorFileException.class, () -> f.get("o"));
        assertTrue(e.getMessage().contains("no tensor named 'o'; the file holds [q, k, v]"), e.getMessage());
    }

    @Test
    void roundTripsThroughItsWriter() throws IOException {
        SafetensorsFile spec = Safetensors.read(NpyTest.fixture("spec_qkv.safetensors"));
        Map<String, NdArray> tensors = new LinkedHashMap<>(spec.tensors());
        tensors.put("empty", NdArray.ofFloats(new float[0], 0, 3));
        tensors.put("scalar", NdArray.ofFloats(new float[] {4f}));
        Path out = dir.resolve("out.safetensors");
        Safetensors.write(out, tensors, Map.of("format", "pt", "quote\"d", "line\nbreak"));
        byte[] bytes = Files.readAllBytes(out);
        long header = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, header % 8, "header padded to 8 bytes");
        SafetensorsFile back = Safetensors.read(out);
        assertEquals(tensors, back.tensors());
        assertEquals(Map.of("format", "pt", "quote\"d", "line\nbreak"), back.metadata());
    }

    @Test
    void readsAndWritesE4m3CodesAsF8E4M3() throws IOException {
        // laid out by the format's description: u64 header length, the JSON header, then the bytes
        byte[] codes = {0x00, 0x38, (byte) 0xB8, 0x7E, 0x01, 0x08, (byte) 0xFE, 0x40};
        String json = "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[1,2,4],\"data_offsets\":[0,8]}}";
        byte[] head = json.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + head.length + codes.length).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(head.length).put(head).put(codes);
        Path f = dir.resolve("e4m3.safetensors");
        Files.write(f, buf.array());
        SafetensorsFile file = Safetensors.read(f);
        NdArray x = file.get("x");
        assertEquals(DType.E4M3, x.dtype());
        assertArrayEquals(new float[] {0f, 1f, -1f, 448f, 0x1p-9f, 0x1p-6f, -448f, 2f}, x.toFloatArray());
        Tensor t = file.tensor("x", Layout.BHSD).withScales(0.5f);
        assertEquals(224f, t.get(0, 0, 0, 3));
        Path out = dir.resolve("back.safetensors");
        Safetensors.write(out, Map.of("x", NdArray.of(t, Layout.BHSD)), Map.of());
        NdArray back = Safetensors.read(out).get("x");
        assertEquals(DType.E4M3, back.dtype());
        assertArrayEquals(x.toFloatArray(), back.toFloatArray(), "the codes go out as they are, whatever the scale");
        assertTrue(new String(Files.readAllBytes(out), StandardCharsets.UTF_8).contains("\"F8_E4M3\""));
    }

    @Test
    void refusesBadFilesWithOneClearLine() throws IOException {
        String good = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertRefused(file(good, 8), null);
        assertRefused(file(good, 4), "truncated: tensor 'x' ends at byte 8 of the data, the file holds 4");
        assertRefused(file(good, 12), "the tensors cover 8 bytes of data, the file holds 12");
        assertRefused(file(good.replace("F32", "I64"), 8), "tensor 'x' has unsupported dtype I64");
        assertRefused(file(good.replace("F32", "F64"), 8), "unsupported dtype F64");
        assertRefused(file(good.replace("[2]", "[3]"), 8), "needs 12 bytes, its data_offsets span 8");
        assertRefused(file(good.replace("[0,8]", "[8,0]"), 8), "begin after end");
        assertRefused(file(good.replace("[0,8]", "[0]"), 8), "no data_offsets list of 2 integers");
        assertRefused(file(good.replace("[2]", "[-2]"), 8), "shape[0] is not a non-negative integer");
        assertRefused(file(good.replace("}}", "}"), 8), "bad .safetensors header: JSON");
        assertRefused(file("[1, 2]", 0), "does not start with '{'");
        String two = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        assertRefused(file(two, 12), "overlaps");
        assertRefused(file(two.replace("[4,12]", "[12,20]"), 20), "has a gap");
        String dup = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}}";
        assertRefused(file(dup, 0), "duplicate key");
        Path junk = dir.resolve("junk.safetensors");
        Files.write(junk, "PK\u0003\u0004 not a tensor file at all".getBytes(StandardCharsets.ISO_8859_1));
        assertRefused(junk, "bad .safetensors header length");
        Path stub = dir.resolve("stub.safetensors");
        Files.write(stub, new byte[] {1, 2, 3});
        assertRefused(stub, "shorter than its 8-byte header length");
        Path cut = dir.resolve("cut.safetensors");
        byte[] full = Files.readAllBytes(file(good, 8));
        Files.write(cut, Arrays.copyOf(full, 20));
        assertRefused(cut, "truncated: the header declares");
    }

    private int files;

    private Path file(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path f = dir.resolve("f" + files++ + ".safetensors");
        Files.write(f, b.array());
        return f;
    }

    /** Refused with a one-line message containing {@code says}; or, for null, read without complaint. */
    private static void assertRefused(Path f, String says) throws IOException {
        if (says == null) {
            assertEquals(2, Safetensors.read(f).get("x").elementCount());
            return;
        }
        TensorFileException e = assertThrows(TensorFileException.class, () -> Safetensors.read(f));
        assertTrue(e.getMessage().startsWith(f + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(says), "expected '" + says + "' in: " + e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
