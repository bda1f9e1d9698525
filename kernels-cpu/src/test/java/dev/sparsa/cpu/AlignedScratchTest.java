package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Scratch arrays on 64-byte boundaries: {@link AlignedArrays} places them, {@link Scratch} allocates
 * through it and replaces the arrays the garbage collector moved off the boundary. The addresses are
 * read here by other means than the class under test: the C library's {@code memchr} searches the
 * array for a marker byte planted at a known index, and the pointer it returns, less the marker's
 * offset, is the address of the first element (the reader itself is checked on a native buffer
 * whose address Java knows).
 */
class AlignedScratchTest {
    private static MethodHandle memchr;

    @BeforeAll
    static void nativeAccess() {
        assumeTrue(AlignedScratchTest.class.getModule().isNativeAccessEnabled(),
                "the build's test JVM runs with --enable-native-access; this one does not");
        Linker linker = Linker.nativeLinker();
        memchr = linker.downcallHandle(linker.defaultLookup().find("memchr").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                        ValueLayout.JAVA_LONG), Linker.Option.critical(true));
    }

    /** The address of {@code a[0]}: memchr finds a marker byte planted in a[index]; its pointer minus the offset. */
    private static long addressOf(float[] a, int index) throws Throwable {
        float keep = a[index];
        a[index] = Float.intBitsToFloat(0x7f000000 | 0x5a5a5a); // bytes 5a 5a 5a 7f (little-endian)
        try {
            // the floats before index are zero, so the first 0x7f byte is a[index]'s top byte
            for (int i = 0; i < index; i++) {
                assertEquals(0f, a[i], "the test expects a zeroed prefix");
            }
            MemorySegment hit = (MemorySegment) memchr.invokeExact(MemorySegment.ofArray(a), 0x7f,
                    4L * a.length);
            return hit.address() - (4L * index + 3);
        } finally {
            a[index] = keep;
        }
    }

    @Test
    void enabledWhenTheTestJvmHasNativeAccess() {
        assertTrue(AlignedArrays.enabled(), "native access is granted, so scratch should be aligned");
    }

    @Test
    void allocatedArraysStartOnTheBoundaryAndAreZeroed() throws Throwable {
        for (int n : new int[] {1, 3, 15, 16, 17, 100, 1024, 4096, 8192, 65_536}) {
            for (int rep = 0; rep < 20; rep++) {
                float[] a = AlignedArrays.allocate(n);
                assertEquals(n, a.length);
                for (float x : a) {
                    assertEquals(0f, x);
                }
                assertEquals(0, addressOf(a, Math.min(n - 1, 1)) % AlignedArrays.BOUNDARY,
                        "float[" + n + "], allocation " + rep);
                assertTrue(AlignedArrays.aligned(a));
            }
        }
    }

    @Test
    void alignedTellsTheTruthAfterTheCollectorMovedArrays() throws Throwable {
        float[][] plain = new float[64][];
        for (int i = 0; i < plain.length; i++) {
            plain[i] = new float[40 + i];
        }
        for (int round = 0; round < 3; round++) {
            System.gc();
            int off = 0;
            for (float[] a : plain) {
                boolean onBoundary = addressOf(a, 1) % AlignedArrays.BOUNDARY == 0;
                assertEquals(onBoundary, AlignedArrays.aligned(a), "round " + round);
                off += onBoundary ? 0 : 1;
            }
            assertTrue(off > 0, "64 plain arrays all on a 64-byte boundary: the check would be vacuous");
        }
    }

    @Test
    void scratchReplacesArraysMovedOffTheBoundaryWithinItsCheckInterval() {
        Scratch sc = new Scratch();
        sc.ensure(64, 64, 128, 128, 64);
        for (int round = 0; round < 3; round++) {
            System.gc(); // may move the arrays
            for (int i = 0; i < Scratch.REALIGN_EVERY; i++) {
                sc.ensure(64, 64, 128, 128, 64);
            }
            for (float[] a : new float[][] {sc.qT, sc.qR, sc.sR, sc.o, sc.s, sc.k, sc.v}) {
                assertTrue(AlignedArrays.aligned(a), "round " + round);
                assertTrue(a.length > 0);
            }
        }
    }

    @Test
    void theAddressReaderFindsAKnownAddress() throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment seg = arena.allocate(256, 64);
            seg.set(ValueLayout.JAVA_BYTE, 37, (byte) 0x7f);
            Linker linker = Linker.nativeLinker();
            MethodHandle plainMemchr = linker.downcallHandle(linker.defaultLookup().find("memchr").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT,
                            ValueLayout.JAVA_LONG));
            MemorySegment hit = (MemorySegment) plainMemchr.invokeExact(seg, 0x7f, 256L);
            assertEquals(seg.address() + 37, hit.address());
        }
    }
}
