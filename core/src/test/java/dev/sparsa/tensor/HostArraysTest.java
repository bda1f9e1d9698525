package dev.sparsa.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Host tensors on 64-byte boundaries: {@link HostArrays} slices their arrays, {@link Tensor#allocate}
 * and {@link Tensor#toHost} allocate through it. The addresses are read here by other means than
 * the class under test: the C library's {@code memchr} finds a marker byte planted at the segment's
 * first byte and returns its address.
 */
class HostArraysTest {
    private static MethodHandle memchr;

    @BeforeAll
    static void nativeAccess() {
        assumeTrue(HostArraysTest.class.getModule().isNativeAccessEnabled(),
                "the build's test JVM runs with --enable-native-access; this one does not");
        Linker linker = Linker.nativeLinker();
        memchr = linker.downcallHandle(linker.defaultLookup().find("memchr").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_LONG), Linker.Option.critical(true));
    }

    /** The address of {@code seg}'s first byte, which must be 0 (it is set to a marker and back). */
    private static long firstByteAddress(MemorySegment seg) throws Throwable {
        assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, 0));
        seg.set(ValueLayout.JAVA_BYTE, 0, (byte) 0x7f);
        try {
            return ((MemorySegment) memchr.invokeExact(seg, 0x7f, 1L)).address();
        } finally {
            seg.set(ValueLayout.JAVA_BYTE, 0, (byte) 0);
        }
    }

    @Test
    void alignedWhenTheTestJvmHasNativeAccess() {
        assertTrue(HostArrays.aligned(), "native access is granted, so host arrays should be aligned");
    }

    @Test
    void heapTensorsStartOnTheBoundaryAreZeroedAndHoldExactlyTheirElements() throws Throwable {
        // small arrays (in a thread's buffer) and one of 20 MiB (a G1 humongous object), every dtype
        for (DType dtype : DType.values()) {
            for (int seq : new int[] {1, 3, 17, 40_960}) {
                Tensor t = Tensor.allocate(dtype, Layout.BHSD, 1, 1, seq, 128);
                MemorySegment seg = t.segment();
                assertTrue(seg.heapBase().isPresent(), dtype + " seq " + seq);
                assertEquals((long) seq * 128 * dtype.byteSize(), seg.byteSize(), dtype + " seq " + seq);
                assertEquals(0, firstByteAddress(seg) % HostArrays.BOUNDARY, dtype + " seq " + seq);
                for (long i = 0; i < seg.byteSize(); i += 4093) {
                    assertEquals(0, seg.get(ValueLayout.JAVA_BYTE, i), dtype + " byte " + i);
                }
            }
        }
    }

    @Test
    void valuesWrittenThroughTheSliceReadBackAndStayInsideIt() {
        int b = 2, h = 3, s = 5, d = 16;
        float[] x = new float[b * h * s * d];
        for (int i = 0; i < x.length; i++) {
            x[i] = i * 0.25f - 7f;
        }
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            Tensor t = Tensor.of(x, Layout.BHSD, b, h, s, d).to(dtype, Layout.BSHD);
            float[] back = t.toFloatArray();
            for (int i = 0; i < x.length; i++) {
                assertEquals(dtype.round(x[i]), back[i], dtype + " element " + i);
            }
            // the padding around the slice is untouched: the array holds zeros outside the segment
            MemorySegment seg = t.segment();
            MemorySegment whole = switch (seg.heapBase().orElseThrow()) {
                case float[] a -> MemorySegment.ofArray(a);
                case short[] a -> MemorySegment.ofArray(a);
                default -> throw new AssertionError("unexpected array");
            };
            for (long i = 0; i < whole.byteSize(); i++) {
                if (i < seg.address() || i >= seg.address() + seg.byteSize()) {
                    assertEquals(0, whole.get(ValueLayout.JAVA_BYTE, i), dtype + " padding byte " + i);
                }
            }
        }
    }
}
