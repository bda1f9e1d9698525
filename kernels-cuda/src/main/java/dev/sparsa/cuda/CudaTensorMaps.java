package dev.sparsa.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.sparsa.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The Hopper kernel's tensor maps of K, V and Q: the kernel parameter {@code WgMaps} of
 * sparsa_prefill_wgmma.cuh, with which its producer copies each block slice of 64 keys, and the Q rows of a tile
 * of consecutive rows, by the tensor memory accelerator (TMA, {@code cp.async.bulk.tensor}) instead of 16-byte
 * {@code cp.async} copies.
 *
 * <p>Each map describes one tensor (bf16, f16 or e4m3) as four dimensions (head dim, key or query row, head,
 * batch) with the tensor's own strides, and a box of 128 bytes × 64 keys (Q: × 128 rows), copied with the
 * 128-byte swizzle the kernel's shared-memory layout uses; keys past {@code keyLength} and rows past
 * {@code queryLength} arrive as zeros. The e4m3 kernel copies V into a staging buffer by TMA too and transposes
 * it there as before. The maps are made by the driver's {@code cuTensorMapEncodeTiled} (CUDA 12.0 or later),
 * called through the JDK's foreign function API ({@link DriverLibrary}; JCuda 12.0.0 does not expose it); that
 * needs native access, as JCuda does.
 *
 * <p>Where TMA cannot describe the tensors (a data address not on 16 bytes, a stride that is not a positive
 * multiple of 16 bytes or reaches 2<sup>40</sup> bytes, a row that is not a whole number of 128-byte blocks, a
 * driver without the function) or where {@link #PROPERTY} is {@code false}, the parameter says off and the
 * kernel copies every chunk and Q with {@code cp.async}: the same shared-memory contents, so the same output
 * bits.
 */
final class CudaTensorMaps {
    /** The system property that turns the TMA copies off with {@code false} (read at every call); on by default. */
    static final String PROPERTY = "sparsa.cuda.tma";

    /**
     * Bytes of the kernel parameter: three 128-byte maps (K, V, Q), the int that turns them on, padded to the
     * maps' 64-byte alignment (sizeof(WgMaps)).
     */
    static final int PARAM_BYTES = 448;
    /** Where the int that turns the maps on sits in the parameter. */
    static final int ON_OFFSET = 384;

    private static final int MAP_BYTES = 128;
    private static final int RANK = 4;
    private static final int BOX_KEYS = 64, BOX_ROWS = 128;
    private static final long STRIDE_LIMIT = 1L << 40;
    private static final int TYPE_UINT8 = 0, TYPE_FLOAT16 = 6, TYPE_BFLOAT16 = 9;
    private static final int INTERLEAVE_NONE = 0, SWIZZLE_128B = 3, L2_PROMOTION_256B = 3, OOB_FILL_NONE = 0;

    private static volatile MethodHandle encode;
    private static volatile String unavailable;

    private CudaTensorMaps() {
    }

    /** The parameter with the maps off (every chunk and Q by {@code cp.async}). */
    static byte[] off() {
        return new byte[PARAM_BYTES];
    }

    /** Whether {@link #PROPERTY} leaves the TMA copies on. */
    static boolean enabled() {
        return !"false".equalsIgnoreCase(System.getProperty(PROPERTY, "true").trim());
    }

    /** Why the driver function could not be found, or null (not looked up yet, or found). */
    static String unavailable() {
        return unavailable;
    }

    /**
     * The parameter for one call: maps of K, V and Q at device addresses {@code kAddress}, {@code vAddress} and
     * {@code qAddress}, or {@link #off()} where TMA cannot describe one of them.
     *
     * @param kStrides K's element strides of (batch, head, key), as the kernel's scalars hold them
     * @param vStrides V's element strides of (batch, head, key)
     * @param qStrides Q's element strides of (batch, head, row)
     * @param headDim the head dim (the width of Q, K and V)
     * @param keyLength keys per sequence
     * @param queryLength query rows per sequence
     * @param kvHeads KV heads
     * @param qHeads query heads
     * @param batch sequences
     * @param dtype the element type of Q, K and V (bf16, f16 and e4m3 are mapped)
     */
    static byte[] of(long kAddress, long vAddress, long qAddress, long[] kStrides, long[] vStrides, long[] qStrides,
                     int headDim, int keyLength, int queryLength, int kvHeads, int qHeads, int batch, DType dtype) {
        int type = switch (dtype) {
            case BF16 -> TYPE_BFLOAT16;
            case F16 -> TYPE_FLOAT16;
            case E4M3 -> TYPE_UINT8;  // copied as bytes
            default -> -1;
        };
        int elementBytes = dtype.byteSize();
        if (!enabled() || type < 0 || headDim * elementBytes % 128 != 0 || keyLength < 1 || queryLength < 1 || kvHeads < 1
                || qHeads < 1 || batch < 1) {
            return off();
        }
        MethodHandle f = encoder();
        if (f == null) {
            return off();
        }
        long[] kvDims = {headDim, keyLength, kvHeads, batch}, qDims = {headDim, queryLength, qHeads, batch};
        long[][] dims = {kvDims, kvDims, qDims};
        long[][] strides = {strideBytes(kStrides, kvDims, headDim, elementBytes),
                strideBytes(vStrides, kvDims, headDim, elementBytes), strideBytes(qStrides, qDims, headDim, elementBytes)};
        long[] addresses = {kAddress, vAddress, qAddress};
        for (int i = 0; i < 3; i++) {
            if (strides[i] == null || addresses[i] % 16 != 0) {
                return off();
            }
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment param = arena.allocate(PARAM_BYTES, 64);
            MemorySegment elementStrides = arena.allocateFrom(JAVA_INT, 1, 1, 1, 1);
            for (int i = 0; i < 3; i++) {
                MemorySegment box = arena.allocateFrom(JAVA_INT, 128 / elementBytes, i < 2 ? BOX_KEYS : BOX_ROWS, 1, 1);
                int status = (int) f.invokeExact(param.asSlice((long) i * MAP_BYTES, MAP_BYTES), type, RANK,
                        MemorySegment.ofAddress(addresses[i]), arena.allocateFrom(JAVA_LONG, dims[i]),
                        arena.allocateFrom(JAVA_LONG, strides[i]), box, elementStrides, INTERLEAVE_NONE, SWIZZLE_128B,
                        L2_PROMOTION_256B, OOB_FILL_NONE);
                if (status != 0) {
                    return off();  // a layout the driver refuses: the cp.async copies take it
                }
            }
            param.set(JAVA_INT, ON_OFFSET, 1);
            return param.toArray(JAVA_BYTE);
        } catch (Throwable e) {
            unavailable = e.getClass().getSimpleName() + ": " + e.getMessage();
            encode = null;
            return off();
        }
    }

    /**
     * The byte strides of dimensions key (or row), head and batch, or null where one that matters (of a dimension
     * longer than 1) is not a positive multiple of 16 below 2^40; a dimension of length 1 is never stepped, so
     * its stride is replaced by a valid one.
     */
    static long[] strideBytes(long[] batchHeadKey, long[] dims, int headDim, int elementBytes) {
        long[] elements = {batchHeadKey[2], batchHeadKey[1], batchHeadKey[0]};
        long[] bytes = new long[RANK - 1];
        for (int i = 0; i < bytes.length; i++) {
            long b = elements[i] * elementBytes;
            boolean valid = elements[i] > 0 && elements[i] < STRIDE_LIMIT / elementBytes && b % 16 == 0;
            if (!valid) {
                if (dims[i + 1] > 1) {
                    return null;
                }
                b = (long) headDim * elementBytes;
            }
            bytes[i] = b;
        }
        return bytes;
    }

    private static MethodHandle encoder() {
        MethodHandle f = encode;
        if (f == null && unavailable == null) {
            synchronized (CudaTensorMaps.class) {
                if (encode == null && unavailable == null) {
                    try {
                        MemorySegment symbol = DriverLibrary.find("cuTensorMapEncodeTiled", "12.0");
                        encode = Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, ADDRESS,
                                JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT,
                                JAVA_INT, JAVA_INT));
                    } catch (Throwable e) {  // no driver library, an older driver, native access refused
                        unavailable = e.getClass().getSimpleName() + ": " + e.getMessage();
                    }
                }
                f = encode;
            }
        }
        return f;
    }
}
