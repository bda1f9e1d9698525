package dev.sparsa.internal;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Where a Java array lies in memory now, for the classes that place arrays on cache-line boundaries
 * (host tensors, the CPU kernels' scratch). Java does not say, so the address is read through the
 * foreign linker: a zero-length {@code memset} on a heap segment, passed to a critical downcall,
 * returns the address of the segment's first byte. That needs native access for Sparsa's core
 * ({@code --enable-native-access=ALL-UNNAMED} on the class path, or the module's name); without it,
 * or where the platform has no C library to look up, {@link #available()} is false. The answer holds
 * until the garbage collector next moves the array.
 */
public final class ArrayAddresses {
    private static final MethodHandle MEMSET = memset();

    private ArrayAddresses() {
    }

    /** Whether addresses can be read in this JVM. */
    public static boolean available() {
        return MEMSET != null;
    }

    /**
     * The address of the first byte of {@code heap}, a segment over a Java array.
     *
     * @throws IllegalStateException if addresses cannot be read ({@link #available()} is false) or the
     *     downcall fails
     */
    public static long of(MemorySegment heap) {
        if (MEMSET == null) {
            throw new IllegalStateException("array addresses cannot be read in this JVM (no native access)");
        }
        try {
            return ((MemorySegment) MEMSET.invokeExact(heap, 0, 0L)).address();
        } catch (Throwable t) {
            throw new IllegalStateException("memset through the foreign linker failed", t);
        }
    }

    private static MethodHandle memset() {
        if (!ArrayAddresses.class.getModule().isNativeAccessEnabled()) {
            return null;
        }
        try {
            Linker linker = Linker.nativeLinker();
            Optional<MemorySegment> f = linker.defaultLookup().find("memset");
            if (f.isEmpty()) {
                return null;
            }
            MethodHandle h = linker.downcallHandle(f.get(), FunctionDescriptor.of(ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG), Linker.Option.critical(true));
            // a heap segment must come back as an address in the array, not as null
            MemorySegment at = (MemorySegment) h.invokeExact(MemorySegment.ofArray(new float[32]), 0, 0L);
            return at.address() != 0 ? h : null;
        } catch (Throwable t) {
            return null; // no linker on this platform
        }
    }
}
