package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The decode read pass ({@link DecodeMath#readRows}) allocates nothing per line, whatever code runs it
 * (the interpreter, C1, C2), for f32 and bf16 rows in Java arrays and in native memory, in every
 * flavour. A read pass that summed Vector API vectors allocated a vector per line wherever its code
 * lacked the API's intrinsics; in about one JVM in five its first C2 code did (a virtual call left in
 * the compiled loop), and every bf16 decode step of that JVM ran 3–4 × slower (docs/PERFORMANCE.md,
 * "bf16 rows 3–4 × slower in some JVMs").
 */
class DecodeReadPassTest {
    private static final int KEYS = 64;
    private static final int DIM = 128;
    private static final int CALLS = 300;

    @Test
    void readPassAllocatesNothingPerLine() {
        com.sun.management.ThreadMXBean threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        TileMath tiles = TileMathProvider.best();
        for (DecodeMath math : List.of(DecodeMathProvider.forFlavour(tiles.flavour()),
                DecodeMathProvider.forFlavour(KernelFlavour.SCALAR))) {
            for (DType type : List.of(DType.F32, DType.BF16)) {
                for (boolean nativeMemory : new boolean[] {false, true}) {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment keys = rows(type, nativeMemory, arena);
                        MemorySegment values = rows(type, nativeMemory, arena);
                        long[] off = new long[KEYS];
                        for (int j = 0; j < KEYS; j++) {
                            off[j] = (long) j * DIM * type.byteSize();
                        }
                        math.readRows(keys, off, DIM, values, off, DIM, type, KEYS);
                        long before = threads.getCurrentThreadAllocatedBytes();
                        for (int i = 0; i < CALLS; i++) {
                            math.readRows(keys, off, DIM, values, off, DIM, type, KEYS);
                        }
                        long perCall = (threads.getCurrentThreadAllocatedBytes() - before) / CALLS;
                        // a call reads 2 · 64 rows of 4 or 8 lines; a vector per line would be ≥ 40 KB
                        assertTrue(perCall < 256, math.flavour() + " " + type + (nativeMemory ? " native" : " heap")
                                + ": the read pass allocated " + perCall + " bytes a call");
                    }
                }
            }
        }
    }

    private static MemorySegment rows(DType type, boolean nativeMemory, Arena arena) {
        int n = KEYS * DIM;
        if (nativeMemory) {
            return arena.allocate((long) n * type.byteSize(), 64);
        }
        return type == DType.BF16 ? MemorySegment.ofArray(new short[n]) : MemorySegment.ofArray(new float[n]);
    }
}
