package dev.sparsa.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link Npy} against files NumPy wrote (make_fixtures.py beside them) and against its own writer. */
class NpyTest {
    @TempDir
    Path dir;

    static Path fixture(String name) {
        try {
            return Path.of(NpyTest.class.getResource(name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The fixtures' values: element i is (i mod 64) * 0.25 - 10. */
    static float expected(long i) {
        return (i % 64) * 0.25f - 10f;
    }

    @Test
    void readsNumpyFloat32OfRankFourAsBothLayouts() throws IOException {
        NdArray a = Npy.read(fixture("numpy_f32_2x3x4x8.npy"));
        assertEquals(DType.F32, a.dtype());
        assertArrayEquals(new long[] {2, 3, 4, 8}, a.shape());
        for (long i = 0; i < a.elementCount(); i++) {
            assertEquals(expected(i), a.getFloat(i));
        }
        Tensor bhsd = a.asTensor(Layout.BHSD);
        assertArrayEquals(new int[] {2, 3, 4, 8}, bhsd.shape());
        assertEquals(expected(((1 * 3 + 2) * 4 + 3) * 8 + 5), bhsd.get(1, 2, 3, 5));
        Tensor bshd = a.asTensor(Layout.BSHD); // axes read as [B, S=3, H=4, D]
        assertArrayEquals(new int[] {2, 4, 3, 8}, bshd.shape());
        assertEquals(expected(((1 * 3 + 2) * 4 + 3) * 8 + 5), bshd.get(1, 3, 2, 5));
        assertTrue(bhsd.segment().isMapped(), "the tensor is a view of the mapped file, not a copy");
    }

    @Test
    void readsNumpyFloat16AndBf16BitsAndLowRanks() throws IOException {
        NdArray h = Npy.read(fixture("numpy_f16_3x5.npy"));
        assertEquals(DType.F16, h.dtype());
        assertArrayEquals(new long[] {3, 5}, h.shape());
        NdArray b = Npy.read(fixture("numpy_bf16_as_u16_4x8.npy"));
        assertEquals(DType.BF16, b.dtype(), "uint16 holds bf16 bit patterns");
        for (NdArray a : new NdArray[] {h, b, Npy.read(fixture("numpy_f32_rank1.npy"))}) {
            for (long i = 0; i < a.elementCount(); i++) {
                assertEquals(expected(i), a.getFloat(i), a + " element " + i);
            }
        }
        Tensor t = b.asTensor(Layout.BHSD);
        assertArrayEquals(new int[] {1, 1, 4, 8}, t.shape());
        assertEquals(expected(13), t.get(0, 0, 1, 5));
        NdArray scalar = Npy.read(fixture("numpy_f32_scalar.npy"));
        assertEquals(0, scalar.rank());
        assertEquals(2.5f, scalar.getFloat(0));
    }

    @Test
    void writerMatchesNumpyByteForByte() throws IOException {
        Path mine = dir.resolve("mine.npy");
        Npy.write(mine, Npy.read(fixture("numpy_f32_2x3x4x8.npy")));
        assertArrayEquals(Files.readAllBytes(fixture("numpy_f32_2x3x4x8.npy")), Files.readAllBytes(mine));
        Npy.write(mine, Npy.read(fixture("numpy_f16_3x5.npy")));
        assertArrayEquals(Files.readAllBytes(fixture("numpy_f16_3x5.npy")), Files.readAllBytes(mine));
        Npy.write(mine, Npy.read(fixture("numpy_f32_rank1.npy")));
        assertArrayEquals(Files.readAllBytes(fixture("numpy_f32_rank1.npy")), Files.readAllBytes(mine));
        Npy.write(mine, Npy.read(fixture("numpy_f32_scalar.npy")));
        assertArrayEquals(Files.readAllBytes(fixture("numpy_f32_scalar.npy")), Files.readAllBytes(mine));
    }

    @Test
    void roundTripsEveryTypeAndRank() throws IOException {
        Random r = new Random(3);
        for (DType t : DType.values()) {
            for (long[] shape : new long[][] {{}, {5}, {3, 4}, {2, 3, 5}, {2, 1, 3, 8}, {1, 2, 1, 2, 3}, {0, 4}}) {
                int n = (int) NdArray.count(shape);
                NdArray a;
                if (t == DType.F32) {
                    float[] v = new float[n];
                    for (int i = 0; i < n; i++) {
                        v[i] = (float) r.nextGaussian();
                    }
                    a = NdArray.ofFloats(v, shape);
                } else if (t == DType.E4M3) {
                    byte[] v = new byte[n];
                    for (int i = 0; i < n; i++) {
                        v[i] = DType.floatToE4m3((float) r.nextGaussian() * 50f);
                    }
                    a = NdArray.ofE4m3(v, shape);
                } else {
                    short[] v = new short[n];
                    for (int i = 0; i < n; i++) {
                        float x = (float) r.nextGaussian();
                        v[i] = t == DType.F16 ? Float.floatToFloat16(x) : DType.floatToBf16(x);
                    }
                    a = NdArray.ofBits(t, v, shape);
                }
                Path f = dir.resolve("a.npy");
                Npy.write(f, a);
                byte[] bytes = Files.readAllBytes(f);
                int headerEnd = 10 + ((bytes[8] & 0xFF) | (bytes[9] & 0xFF) << 8);
                assertEquals(0, headerEnd % 64, "data starts 64-byte aligned, as NumPy writes it");
                try (Arena arena = Arena.ofConfined()) {
                    assertEquals(a, Npy.read(f, arena), t + " " + Arrays.toString(shape));
                }
            }
        }
    }

    @Test
    void writesTensorsInEitherLayoutFromAnyStrides() throws IOException {
        float[] v = new float[2 * 3 * 5 * 8];
        for (int i = 0; i < v.length; i++) {
            v[i] = i;
        }
        Tensor bshd = Tensor.of(v, Layout.BSHD, 2, 3, 5, 8);
        Path f = dir.resolve("t.npy");
        Npy.write(f, bshd, Layout.BHSD);
        Tensor back = Npy.readTensor(f, Layout.BHSD);
        Path g = dir.resolve("u.npy");
        Npy.write(g, bshd, Layout.BSHD);
        assertArrayEquals(v, Npy.read(g).toFloatArray(), "BSHD order is the original memory");
        for (int b = 0; b < 2; b++) {
            for (int h = 0; h < 3; h++) {
                for (int s = 0; s < 5; s++) {
                    for (int d = 0; d < 8; d++) {
                        assertEquals(bshd.get(b, h, s, d), back.get(b, h, s, d));
                    }
                }
            }
        }
    }

    @Test
    void refusesWhatItCannotReadWithOneClearLine() throws IOException {
        assertRefused(fixture("numpy_fortran_3x4.npy"), "Fortran-order");
        assertRefused(fixture("numpy_f64_2x2.npy"), "'<f8'");
        assertRefused(fixture("numpy_bigendian_2x2.npy"), "big-endian");
        assertRefused(fixture("numpy_int32_2x2.npy"), "unsupported dtype '<i4'");

        byte[] good = Files.readAllBytes(fixture("numpy_f32_2x3x4x8.npy"));
        assertRefused(write("short.npy", Arrays.copyOf(good, good.length - 4)), "truncated");
        assertRefused(write("stub.npy", Arrays.copyOf(good, 40)), "truncated .npy header");
        assertRefused(write("tiny.npy", Arrays.copyOf(good, 5)), "not a .npy file");
        byte[] magic = good.clone();
        magic[1] = 'X';
        assertRefused(write("magic.npy", magic), "not a .npy file");
        byte[] version = good.clone();
        version[6] = 9;
        assertRefused(write("version.npy", version), "unsupported .npy version 9");
        String header = new String(good, 10, 118, StandardCharsets.ISO_8859_1);
        byte[] noShape = good.clone();
        byte[] replaced = header.replace("'shape'", "'shope'").getBytes(StandardCharsets.ISO_8859_1);
        System.arraycopy(replaced, 0, noShape, 10, replaced.length);
        assertRefused(write("key.npy", noShape), "bad .npy header (unexpected key 'shope'");
        byte[] badTuple = good.clone();
        replaced = header.replace("(2, 3,", "(2, x,").getBytes(StandardCharsets.ISO_8859_1);
        System.arraycopy(replaced, 0, badTuple, 10, replaced.length);
        assertRefused(write("tuple.npy", badTuple), "expected a non-negative integer axis length");
        TensorFileException rank = assertThrows(TensorFileException.class,
                () -> Npy.readTensor(fixture("numpy_f32_rank1.npy"), Layout.BHSD));
        assertTrue(rank.getMessage().contains("rank 2, 3 or 4"), rank.getMessage());
    }

    private Path write(String name, byte[] bytes) throws IOException {
        Path f = dir.resolve(name);
        Files.write(f, bytes);
        return f;
    }

    private static void assertRefused(Path f, String says) {
        TensorFileException e = assertThrows(TensorFileException.class, () -> Npy.read(f));
        assertTrue(e.getMessage().startsWith(f.toString() + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(says), "expected '" + says + "' in: " + e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }
}
