package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The backend is found through ServiceLoader, and the flavour lookup behaves as documented. */
class CpuBackendLookupTest {

    @Test
    void registeredUnderTheNameCpu() {
        AttentionBackend b = Backends.get("cpu");
        assertInstanceOf(CpuBackend.class, b);
        assertEquals("cpu", b.name());
        assertEquals(0, b.priority());
        assertTrue(b.availability().available(), b.availability().reason());
        assertTrue(Backends.available().contains(b));
    }

    @Test
    void defaultBackendUsesEveryProcessorAndTheBestFlavour() {
        CpuBackend b = new CpuBackend();
        assertEquals(Runtime.getRuntime().availableProcessors(), b.parallelism());
        assertEquals(TileMathProvider.best().flavour(), b.flavour());
        assertTrue(b.availability().reason().contains(b.kernelDescription()));
    }

    @Test
    void vectorFlavourIsChosenWhereTheModuleIsReadable() {
        // surefire runs with --add-modules jdk.incubator.vector (the parent pom's argLine)
        assertTrue(ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent());
        if (System.getProperty(TileMathProvider.SCALAR_PROPERTY) == null) {
            assertEquals(KernelFlavour.VECTOR, TileMathProvider.best().flavour(), TileMathProvider.bestMessage());
            assertTrue(TileMathProvider.bestMessage().contains("vector"), TileMathProvider.bestMessage());
        }
    }

    @Test
    void propertyForcesScalar() {
        Map<String, String> props = Map.of(TileMathProvider.SCALAR_PROPERTY, "true");
        TileMathProvider.Selection s = TileMathProvider.select(props::get);
        assertEquals(KernelFlavour.SCALAR, s.math().flavour());
        assertTrue(s.message().contains("-D" + TileMathProvider.SCALAR_PROPERTY + "=true"), s.message());
        TileMathProvider.Selection normal = TileMathProvider.select(key -> null);
        assertEquals(KernelFlavour.VECTOR, normal.math().flavour(), normal.message());
    }

    @Test
    void explicitFlavoursAreHonoured() {
        assertEquals(KernelFlavour.SCALAR, new CpuBackend(KernelFlavour.SCALAR, 2).flavour());
        assertEquals(KernelFlavour.VECTOR, new CpuBackend(KernelFlavour.VECTOR, 2).flavour());
        assertTrue(new CpuBackend(KernelFlavour.SCALAR, 1).kernelDescription().contains("scalar"));
    }

    @Test
    void fallbackMessageNamesTheFlag() {
        // the message a JVM without the module logs, and the error an explicit VECTOR request gets
        assertEquals("--add-modules jdk.incubator.vector", TileMathProvider.VECTOR_FLAG);
    }
}
