package dev.sparsa.cuda;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUstream;

/**
 * Raw driver handles inside JCuda's handle objects. JCuda keeps a handle in the private field
 * {@code nativePointer} of {@link NativePointerObject} and offers no public way to build a handle
 * object from an address another library gives (PyTorch's {@code torch.cuda.Stream.cuda_stream},
 * CuPy's {@code Stream.ptr}); this class reads and writes that field.
 */
final class JCudaHandles {
    private static final VarHandle NATIVE_POINTER;

    static {
        try {
            NATIVE_POINTER = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup())
                    .findVarHandle(NativePointerObject.class, "nativePointer", long.class);
        } catch (ReflectiveOperationException | IllegalAccessError e) {
            throw new ExceptionInInitializerError("JCuda's NativePointerObject.nativePointer is not accessible: " + e);
        }
    }

    private JCudaHandles() {
    }

    /** The driver handle ({@code CUstream}, {@code CUevent}, ...) a JCuda handle object holds. */
    static long address(NativePointerObject handle) {
        return (long) NATIVE_POINTER.get(handle);
    }

    /**
     * A JCuda pointer to host address {@code address}, as {@code cuMemHostAlloc} fills one (for
     * copies into and the freeing of page-locked memory known by its address).
     */
    static Pointer hostPointer(long address) {
        Pointer p = new Pointer();
        NATIVE_POINTER.set(p, address);
        return p;
    }

    /** A JCuda stream object over a raw {@code CUstream} handle ({@code 0}: the legacy default stream). */
    static CUstream stream(long handle) {
        CUstream s = new CUstream();
        NATIVE_POINTER.set(s, handle);
        return s;
    }
}
