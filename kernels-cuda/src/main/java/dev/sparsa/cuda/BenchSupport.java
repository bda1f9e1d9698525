package dev.sparsa.cuda;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

/** What the device benchmarks' command-line mains share: the backend, their inputs and the median. */
final class BenchSupport {
    private BenchSupport() {
    }

    /** The CUDA backend; when it is unavailable, says why on stderr and exits with status 2. */
    static CudaBackend backendOrExit() {
        CudaBackend backend = new CudaBackend();
        if (!backend.availability().available()) {
            System.err.println("cuda backend unavailable: " + backend.availability().reason());
            System.exit(2);
        }
        return backend;
    }

    /** Median of the values (sorts a copy). */
    static double median(double[] values) {
        double[] c = values.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }

    /**
     * A host bf16 tensor {@code [1, heads, seq, dim]} (BHSD) of values uniform in {@code [-1, 1)}: head
     * {@code h} draws from {@code SplittableRandom(seed · 1000 + h)}, the heads filled in parallel.
     */
    static Tensor randomBf16(int heads, int seq, int dim, long seed) {
        Tensor t = Tensor.allocate(DType.BF16, Layout.BHSD, 1, heads, seq, dim);
        MemorySegment seg = t.segment();
        long perHead = (long) seq * dim;
        IntStream.range(0, heads).parallel().forEach(hd -> {
            SplittableRandom r = new SplittableRandom(seed * 1000 + hd);
            for (long i = hd * perHead, end = i + perHead; i < end; i++) {
                seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, DType.floatToBf16((float) (r.nextDouble() * 2 - 1)));
            }
        });
        return t;
    }
}
