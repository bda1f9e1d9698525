package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Availability;
import dev.sparsa.backend.BackendUnavailableException;
import dev.sparsa.backend.Backends;
import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** What the backend does where no GPU can be used: runs everywhere, needs no device. */
class CudaBackendAvailabilityTest {

    @Test
    void serviceLoaderFindsTheBackendWithItsNameAndPriority() {
        AttentionBackend b = Backends.get("cuda");
        assertEquals("cuda", b.name());
        assertEquals(10, b.priority());
        assertTrue(b instanceof CudaBackend);
    }

    @Test
    void availabilityAlwaysGivesAReasonAndIsCached() {
        CudaBackend b = new CudaBackend();
        Availability a = b.availability();
        assertFalse(a.reason() == null || a.reason().isBlank(), "a reason either way");
        assertSame(a, b.availability(), "probed once");
        assertSame(a, new CudaBackend().availability(), "one process-wide probe");
    }

    @Test
    void missingNativeLibraryIsReportedNotThrown() {
        AtomicInteger calls = new AtomicInteger();
        CudaBackend b = new CudaBackend(() -> {
            calls.incrementAndGet();
            throw new UnsatisfiedLinkError("libcuda.so.1: cannot open shared object file");
        });
        Availability a = b.availability();
        assertFalse(a.available());
        assertTrue(a.reason().contains("libcuda.so.1"), a.reason());
        assertTrue(a.reason().contains("R580"), a.reason());
        b.availability();
        assertEquals(1, calls.get(), "the probe runs once");
    }

    @Test
    void laterClassInitialisationFailureIsReported() {
        CudaBackend b = new CudaBackend(() -> {
            throw new NoClassDefFoundError("Could not initialize class jcuda.driver.JCudaDriver");
        });
        assertFalse(b.availability().available());
        assertTrue(b.availability().reason().contains("JCudaDriver"), b.availability().reason());
    }

    @Test
    void driverErrorsAreNamed() {
        CudaBackend noDevice = new CudaBackend(() -> {
            throw new CudaException("cuInit", null, 100, "CUDA_ERROR_NO_DEVICE");
        });
        assertTrue(noDevice.availability().reason().contains("no CUDA device"), noDevice.availability().reason());
        assertTrue(noDevice.availability().reason().contains("CUDA_ERROR_NO_DEVICE"));
        CudaBackend oldDriver = new CudaBackend(() -> {
            throw new CudaException("cuModuleLoadData", null, 222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION");
        });
        assertTrue(oldDriver.availability().reason().contains("R580"), oldDriver.availability().reason());
    }

    @Test
    void forwardWithoutDeviceThrowsTheReasonAfterValidating() {
        CudaBackend b = new CudaBackend(() -> {
            throw new UnsatisfiedLinkError("no JCudaDriver-12.0.0-linux-x86_64 in java.library.path");
        });
        AttentionShape s = AttentionShape.of(1, 2, 64, 64, 64);
        Problems.Qkv p = Problems.qkv(1, s, DType.BF16, Layout.BHSD);
        SparsePlan plan = Dense.INSTANCE.plan(PlanContext.of(s, Options.defaults()));
        Tensor out = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 2, 64, 64);
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class,
                () -> b.forward(plan, p.q(), p.k(), p.v(), out, null, Options.defaults()));
        assertTrue(e.getMessage().contains("JCudaDriver"), e.getMessage());
        // validation comes first: a wrong output shape is an IllegalArgumentException even without a device
        Tensor wrong = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 2, 63, 64);
        IllegalArgumentException iae = assertThrows(IllegalArgumentException.class,
                () -> b.forward(plan, p.q(), p.k(), p.v(), wrong, null, Options.defaults()));
        assertTrue(iae.getMessage().startsWith("out:"), iae.getMessage());
    }

    @Test
    void hostOutputsWithoutADeviceAreHeapTensors() {
        CudaBackend b = new CudaBackend(() -> {
            throw new CudaException("cuInit", null, 100, "CUDA_ERROR_NO_DEVICE");
        });
        Tensor out = b.allocateOutput(Device.CPU, DType.BF16, Layout.BSHD, 1, 2, 64, 64);
        assertTrue(out.isHost());
        assertFalse(out.segment().isNative(), "a Java array");
        assertArrayEquals(Layout.BSHD.strides(1, 2, 64, 64), out.strides());
        assertFalse(PinnedOutputs.holds(out.segment()));
        out.close();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> b.allocateOutput(Device.CPU, DType.F32, Layout.BHSD, 0, 2, 64, 64));
        assertTrue(e.getMessage().startsWith("shape:"), e.getMessage());
    }

    @Test
    void geometriesAreDeclared() {
        CudaBackend b = new CudaBackend();
        assertTrue(b.supports(new TileGeometry(64, 64)));
        assertTrue(b.supports(new TileGeometry(128, 128)));
        assertFalse(b.supports(new TileGeometry(32, 32)));
        assertFalse(b.supports(new TileGeometry(64, 128)));
        assertEquals("64x64 and 128x128", b.supportedGeometries());
    }

    @Test
    void aMissingDriverIsReportedInOneLine() {
        String jcuda = "Error while loading native library \"JCudaDriver-12.0.0-linux-x86_64\"\n"
                + "Stack trace from the attempt to load the library as a file:\n"
                + "java.lang.UnsatisfiedLinkError: no JCudaDriver-12.0.0-linux-x86_64 in java.library.path: /usr/lib\n"
                + "\tat java.base/java.lang.ClassLoader.loadLibrary(ClassLoader.java:2285)\n"
                + "Stack trace from the attempt to load the library as a resource:\n"
                + "java.lang.UnsatisfiedLinkError: /tmp/libJCudaDriver.so: libcuda.so.1: cannot open shared object file\n"
                + "\tat java.base/jdk.internal.loader.NativeLibraries.load(Native Method)\n";
        assertEquals("/tmp/libJCudaDriver.so: libcuda.so.1: cannot open shared object file", CudaBackend.linkFailure(jcuda));
        assertEquals("plain message", CudaBackend.linkFailure("plain message"));
        assertFalse(new CudaBackend().availability().reason().contains("\n"), "the reason is one line");
    }
}
