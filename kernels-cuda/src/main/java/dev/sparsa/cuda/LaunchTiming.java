package dev.sparsa.cuda;

import static jcuda.driver.JCudaDriver.cuMemsetD8Async;

import java.util.Arrays;
import java.util.Locale;

/**
 * The timing loop of the GPU benchmarks ({@code dev.sparsa.bench.gpu.CudaBench}, {@code CudaDecodeBench}),
 * the statistics they print and the parsing of their flags; {@code kernels-cuda/bench/bench_stats.py} is
 * its Python twin for the PyTorch side, with the same definitions.
 *
 * <p>{@link #time} runs one row: a warm-up of at least {@link Settings#warmup()} launches and at least
 * {@link Settings#warmupSeconds()} of wall time (so that the clocks settle before timing), then
 * {@link Settings#iters()} timed launches, each between its own pair of CUDA events on the stream and
 * waited for before the next (the device's time of that launch alone). With {@link Settings#flushL2()}
 * every launch, warm-up included, is preceded by a memset of a {@value #FLUSH_MIB} MiB buffer on the same
 * stream, outside the events, so that each launch starts with an L2 cache holding none of its inputs.
 *
 * <p>Not part of the attention API: it exists for the benchmarks. Throws {@link CudaException} when a
 * driver call fails.
 */
public final class LaunchTiming implements AutoCloseable {
    /** Size of the buffer written between launches to evict the L2 cache (larger than any current L2). */
    public static final int FLUSH_MIB = 256;

    /**
     * How one row is timed.
     *
     * @param iters timed launches per row (at least 1)
     * @param warmup the least number of warm-up launches (at least 0)
     * @param warmupSeconds the least wall time of the warm-up in seconds (finite, at least 0)
     * @param flushL2 whether an L2-evicting memset precedes every launch
     */
    public record Settings(int iters, int warmup, double warmupSeconds, boolean flushL2) {
        /** Throws IllegalArgumentException on a value out of the ranges above. */
        public Settings {
            if (iters < 1) {
                throw new IllegalArgumentException("--iters: must be at least 1, got " + iters);
            }
            if (warmup < 0) {
                throw new IllegalArgumentException("--warmup: must be at least 0, got " + warmup);
            }
            if (!(warmupSeconds >= 0) || Double.isInfinite(warmupSeconds)) {
                throw new IllegalArgumentException("--warmup-s: must be a finite number >= 0, got " + warmupSeconds);
            }
        }
    }

    /**
     * The smallest, median and largest of one row's timed launches, in milliseconds. The median of an
     * even count is the mean of the two middle values (as Python's {@code statistics.median}).
     */
    public record Stats(double min, double median, double max) {
        /**
         * The statistics of {@code samples} (not modified). Throws IllegalArgumentException when there are
         * none or one is not a finite number.
         */
        public static Stats of(double[] samples) {
            if (samples.length == 0) {
                throw new IllegalArgumentException("no samples");
            }
            double[] s = samples.clone();
            for (double v : s) {
                if (!Double.isFinite(v)) {
                    throw new IllegalArgumentException("sample is not finite: " + v);
                }
            }
            Arrays.sort(s);
            int n = s.length;
            double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
            return new Stats(s[0], median, s[n - 1]);
        }
    }

    /**
     * The spread between repeats of one row in percent: {@code 100 · (max − min) / min} over the repeats'
     * medians; for two repeats {@code 100 · |median1 − median2| / min(median1, median2)}. Throws
     * IllegalArgumentException when there is no median or one is not a positive finite number.
     */
    public static double spreadPercent(double[] medians) {
        if (medians.length == 0) {
            throw new IllegalArgumentException("no medians");
        }
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (double m : medians) {
            if (!(m > 0) || Double.isInfinite(m)) {
                throw new IllegalArgumentException("median is not a positive finite number: " + m);
            }
            lo = Math.min(lo, m);
            hi = Math.max(hi, m);
        }
        return 100 * (hi - lo) / lo;
    }

    /**
     * The summary line of one row: {@code spread}, the row's key columns ({@code key}, one or more
     * whitespace-separated tokens), the medians of the repeats joined by {@code /}, and the spread in
     * percent, e.g. {@code spread 8192 sparsa:dense 1.234/1.240 0.49%}.
     */
    public static String spreadLine(String key, double[] medians, String medianFormat) {
        StringBuilder b = new StringBuilder("spread ").append(key).append(' ');
        for (int i = 0; i < medians.length; i++) {
            b.append(i == 0 ? "" : "/").append(String.format(Locale.ROOT, medianFormat, medians[i]));
        }
        return b.append(String.format(Locale.ROOT, " %.2f%%", spreadPercent(medians))).toString();
    }

    // ------------------------------------------------------------------ flags

    /** The value after flag {@code args[i]}. Throws IllegalArgumentException when there is none. */
    public static String value(String[] args, int i) {
        return Flags.value(args, i);
    }

    /** An integer flag value of at least {@code min}. Throws IllegalArgumentException otherwise. */
    public static int intFlag(String flag, String value, int min) {
        int v = Flags.integer(flag, value);
        if (v < min) {
            throw Flags.bad(flag, "must be at least " + min + ", got " + v);
        }
        return v;
    }

    /** A comma-separated list of integers, each at least {@code min}. Throws IllegalArgumentException otherwise. */
    public static int[] intsFlag(String flag, String csv, int min) {
        String[] parts = csv.split(",", -1);
        int[] r = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            r[i] = intFlag(flag, parts[i], min);
        }
        return r;
    }

    /** A number of seconds (finite, at least 0). Throws IllegalArgumentException otherwise. */
    public static double secondsFlag(String flag, String value) {
        double v = Flags.seconds(flag, value);
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw Flags.bad(flag, "must be a finite number >= 0, got '" + value + "'");
        }
        return v;
    }

    /** {@code on} or {@code off}. Throws IllegalArgumentException otherwise. */
    public static boolean switchFlag(String flag, String value) {
        return switch (value) {
            case "on" -> true;
            case "off" -> false;
            default -> throw Flags.bad(flag, "wants on or off, got '" + value + "'");
        };
    }

    // ------------------------------------------------------------------ the loop

    private final CudaDevice device;
    private final CudaStream stream;
    private final Settings settings;
    private final DeviceBuffer flush;
    private final CudaEvents events;
    private int flushes;

    /**
     * A timer of launches queued on {@code stream} (which the caller keeps and closes); allocates the
     * flush buffer when {@code settings.flushL2()}.
     */
    public LaunchTiming(CudaDevice device, CudaStream stream, Settings settings) {
        this.device = device;
        this.stream = stream;
        this.settings = settings;
        this.flush = settings.flushL2() ? DeviceBuffer.scratch(device, (long) FLUSH_MIB << 20) : null;
        this.events = new CudaEvents(device);
    }

    /**
     * Times one row: {@code launch} must queue its work on the stream given to the constructor and
     * return without waiting for it. Returns the statistics of the timed launches in milliseconds.
     */
    public Stats time(Runnable launch) {
        long until = System.nanoTime() + (long) (settings.warmupSeconds() * 1e9);
        for (int i = 0; i < settings.warmup() || System.nanoTime() < until; i++) {
            flush();
            launch.run();
            stream.synchronize("warm-up");
        }
        double[] ms = new double[settings.iters()];
        for (int i = 0; i < ms.length; i++) {
            flush();
            events.start(stream);
            launch.run();
            events.stop(stream);
            ms[i] = events.millis();
        }
        return Stats.of(ms);
    }

    private void flush() {
        if (flush != null) {
            device.makeCurrent();
            Cuda.check(cuMemsetD8Async(flush.pointer(), (byte) (++flushes & 0xff), flush.bytes(), stream.handle()),
                    "cuMemsetD8Async");
        }
    }

    /** Waits for the stream, then frees the events and the flush buffer. */
    @Override
    public void close() {
        stream.synchronize();
        events.close();
        if (flush != null) {
            flush.close();
        }
    }
}
