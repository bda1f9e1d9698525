package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuMemsetD8Async;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The benchmarks' timing loop on a device: launch counts, the time-based warm-up, sane statistics, flush on and off. */
@Tag("gpu")
class LaunchTimingGpuTest {
    private static final CudaBackend BACKEND = new CudaBackend();

    @BeforeAll
    static void device() {
        assumeTrue(BACKEND.availability().available(), () -> "no usable CUDA device: " + BACKEND.availability().reason());
    }

    @Test
    void countsWarmUpsAndTimedLaunchesAndGivesOrderedPositiveStats() {
        CudaDevice dev = BACKEND.device();
        for (boolean flush : new boolean[] {false, true}) {
            try (DeviceBuffer buf = DeviceBuffer.scratch(dev, 64L << 20); CudaStream stream = new CudaStream(dev);
                 LaunchTiming timer = new LaunchTiming(dev, stream, new LaunchTiming.Settings(7, 3, 0, flush))) {
                int[] launches = {0};
                LaunchTiming.Stats st = timer.time(() -> {
                    launches[0]++;
                    dev.makeCurrent();
                    Cuda.check(cuMemsetD8Async(buf.pointer(), (byte) 1, buf.bytes(), stream.handle()), "cuMemsetD8Async");
                });
                assertEquals(3 + 7, launches[0], "flush " + flush);
                assertTrue(st.min() > 0 && st.min() <= st.median() && st.median() <= st.max(), st + " flush " + flush);
                assertTrue(st.max() < 1000, st.toString());
            }
        }
    }

    @Test
    void warmUpLastsAtLeastItsSeconds() {
        CudaDevice dev = BACKEND.device();
        try (CudaStream stream = new CudaStream(dev);
             LaunchTiming timer = new LaunchTiming(dev, stream, new LaunchTiming.Settings(2, 0, 0.3, true))) {
            int[] launches = {0};
            long t0 = System.nanoTime();
            timer.time(() -> launches[0]++);
            double seconds = (System.nanoTime() - t0) / 1e9;
            assertTrue(seconds >= 0.3, "warm-up ended after " + seconds + " s");
            assertTrue(launches[0] > 2, "only " + launches[0] + " launches in 0.3 s of warm-up");
        }
    }
}
