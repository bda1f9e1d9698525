package dev.sparsa.io;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Objects;

/**
 * NumPy's {@code .npy} format (versions 1.0, 2.0 and 3.0 of {@code numpy.lib.format}), for arrays of
 * any rank in C order.
 *
 * <p>Types: {@code float32} ({@code '<f4'}) is f32, {@code float16} ({@code '<f2'}) is f16, and
 * bfloat16 travels as its raw bit patterns in {@code uint16} ({@code '<u2'}), since NumPy has no
 * bfloat16 type: write one from PyTorch with {@code t.view(torch.uint16).numpy()} or from
 * ml_dtypes with {@code a.view(numpy.uint16)}; read it back in Python with {@code
 * torch.from_numpy(a).view(torch.bfloat16)}. Every other type (float64, integers, big-endian data),
 * Fortran order, a bad header or a file shorter than its header says is refused with a {@link
 * TensorFileException} naming the file.
 *
 * <p>Reading maps the file: the array's data is the file's pages, not a copy, and lives as long as
 * the arena it was mapped in.
 */
public final class Npy {
    private static final byte[] MAGIC = {(byte) 0x93, 'N', 'U', 'M', 'P', 'Y'};
    /** NumPy pads the header so that the data starts at a multiple of this. */
    private static final int ALIGN = 64;
    /** Writes go out in chunks below the 2 GiB a {@link ByteBuffer} holds. */
    private static final long CHUNK = 1L << 30;
    /** Heap arrays are written through a native buffer of this size. */
    private static final long STAGE = 4L << 20;

    private Npy() {
    }

    /** Reads a file, mapped in an automatic arena (unmapped once the array is unreachable). */
    public static NdArray read(Path file) throws IOException {
        return read(file, Arena.ofAuto());
    }

    /**
     * Reads a file, mapping its data in {@code arena}.
     *
     * @throws TensorFileException for a file that is not a supported {@code .npy} array
     * @throws IOException if the file cannot be opened or read
     */
    public static NdArray read(Path file, Arena arena) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(arena, "arena");
        requireLittleEndianPlatform();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer pre = ByteBuffer.allocate((int) Math.min(size, 12)).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, pre, 0);
            if (size < 10 || !Arrays.equals(Arrays.copyOf(pre.array(), 6), MAGIC)) {
                throw new TensorFileException(file, "not a .npy file (it does not start with \\x93NUMPY)");
            }
            int major = pre.get(6) & 0xFF;
            long headerLength;
            long headerStart;
            if (major == 1) {
                headerLength = pre.getShort(8) & 0xFFFF;
                headerStart = 10;
            } else if (major == 2 || major == 3) {
                if (size < 12) {
                    throw new TensorFileException(file, "truncated .npy header (" + size + " bytes)");
                }
                headerLength = pre.getInt(8) & 0xFFFFFFFFL;
                headerStart = 12;
            } else {
                throw new TensorFileException(file, "unsupported .npy version " + major + "." + (pre.get(7) & 0xFF)
                        + " (Sparsa reads 1.0, 2.0 and 3.0)");
            }
            long dataStart = headerStart + headerLength;
            if (dataStart > size) {
                throw new TensorFileException(file, "truncated .npy header: it declares " + headerLength
                        + " bytes, the file has " + (size - headerStart) + " after the preamble");
            }
            if (headerLength > (1 << 24)) {
                throw new TensorFileException(file, "bad .npy header: declared length " + headerLength + " bytes");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLength);
            readFully(ch, hb, headerStart);
            NpyHeader h = NpyHeader.parse(file, NpyHeader.decode(hb.array(), major));
            DType dtype = NpyHeader.dtypeOf(file, h.descr());
            long count;
            try {
                count = NdArray.count(h.shape());
            } catch (IllegalArgumentException e) {
                throw new TensorFileException(file, "bad .npy header: " + e.getMessage());
            }
            if (h.fortranOrder() && nonTrivialAxes(h.shape()) > 1) {
                throw new TensorFileException(file, "Fortran-order array of shape " + Arrays.toString(h.shape())
                        + "; Sparsa reads C order (save numpy.ascontiguousarray(a))");
            }
            long bytes;
            try {
                bytes = Math.multiplyExact(count, (long) dtype.byteSize());
            } catch (ArithmeticException e) {
                throw new TensorFileException(file, "bad .npy header: shape " + Arrays.toString(h.shape()) + " overflows");
            }
            if (size - dataStart < bytes) {
                throw new TensorFileException(file, "truncated: shape " + Arrays.toString(h.shape()) + " of '" + h.descr()
                        + "' needs " + bytes + " bytes of data, the file holds " + (size - dataStart));
            }
            MemorySegment data = bytes == 0 ? MemorySegment.ofArray(new byte[0])
                    : ch.map(FileChannel.MapMode.READ_ONLY, dataStart, bytes, arena);
            return new NdArray(dtype, h.shape(), data);
        }
    }

    /** Reads a rank-2..4 array as a tensor in the given axis order (see {@link NdArray#asTensor}). */
    public static Tensor readTensor(Path file, Layout layout) throws IOException {
        NdArray a = read(file);
        try {
            return a.asTensor(layout);
        } catch (IllegalArgumentException e) {
            throw new TensorFileException(file, e.getMessage());
        }
    }

    /** Writes an array (version 1.0 unless its header needs 2.0), replacing the file if it exists. */
    public static void write(Path file, NdArray array) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(array, "array");
        requireLittleEndianPlatform();
        String dict = new NpyHeader(NpyHeader.descrOf(array.dtype()), false, array.shape()).format();
        int preamble = dict.length() + 11 < 65536 ? 10 : 12;
        int padded = dict.length() + 1 + (ALIGN - (preamble + dict.length() + 1) % ALIGN) % ALIGN;
        ByteBuffer head = ByteBuffer.allocate(preamble + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.put(MAGIC).put((byte) (preamble == 10 ? 1 : 2)).put((byte) 0);
        if (preamble == 10) {
            head.putShort((short) padded);
        } else {
            head.putInt(padded);
        }
        head.put(dict.getBytes(StandardCharsets.US_ASCII));
        while (head.position() < head.limit() - 1) {
            head.put((byte) ' ');
        }
        head.put((byte) '\n').flip();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(ch, head);
            writeSegment(ch, array.data());
        }
    }

    /** Writes a tensor as a rank-4 array in the layout's axis order ({@code [B, H, S, D]} or {@code [B, S, H, D]}). */
    public static void write(Path file, Tensor tensor, Layout layout) throws IOException {
        write(file, NdArray.of(tensor, layout));
    }

    /** Writes a segment's bytes; heap segments of non-byte arrays go through a native staging buffer. */
    static void writeSegment(FileChannel ch, MemorySegment data) throws IOException {
        if (data.isNative()) {
            for (long off = 0; off < data.byteSize(); off += CHUNK) {
                writeFully(ch, data.asSlice(off, Math.min(CHUNK, data.byteSize() - off)).asByteBuffer());
            }
            return;
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment stage = arena.allocate(Math.min(STAGE, Math.max(1, data.byteSize())));
            for (long off = 0; off < data.byteSize(); off += stage.byteSize()) {
                long n = Math.min(stage.byteSize(), data.byteSize() - off);
                MemorySegment.copy(data, off, stage, 0, n);
                writeFully(ch, stage.asSlice(0, n).asByteBuffer());
            }
        }
    }

    static void writeFully(FileChannel ch, ByteBuffer b) throws IOException {
        while (b.hasRemaining()) {
            ch.write(b);
        }
    }

    static void readFully(FileChannel ch, ByteBuffer b, long position) throws IOException {
        long p = position;
        while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) {
                break;
            }
            p += n;
        }
        b.flip();
    }

    private static int nonTrivialAxes(long[] shape) {
        int n = 0;
        for (long s : shape) {
            n += s > 1 ? 1 : 0;
        }
        return n;
    }

    static void requireLittleEndianPlatform() {
        if (ByteOrder.nativeOrder() != ByteOrder.LITTLE_ENDIAN) {
            throw new UnsupportedOperationException("tensor files are little-endian; this platform is big-endian");
        }
    }
}
