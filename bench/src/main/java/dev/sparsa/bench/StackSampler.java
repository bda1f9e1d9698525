package dev.sparsa.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A sampling profiler for one thread, for runtimes without Java Flight Recorder (a runtime made by
 * {@code jlink} without {@code jdk.jfr}) and for quick looks at where a call's host time goes: a daemon
 * thread takes the target thread's stack every {@code intervalMicros} and counts, per method, the
 * samples whose stack holds it (inclusive), the samples it tops (self), and the most frequent stacks
 * (top eight frames). Only samples whose stack holds a frame containing {@code within} count (empty:
 * all). {@link Thread#getStackTrace} stops the target at a safepoint, so time spent where the JIT
 * places no safepoint poll (a long array fill, an intrinsic copy) is charged to the next poll: read
 * the counts as "about here", not to the line.
 *
 * <p>As a main class it runs another program's {@code main} on the calling thread, samples that
 * thread, and writes the report when the JVM exits:
 * <pre>{@code
 * ./sparsa run -Dsparsa.sampler.out=samples.txt -Dsparsa.sampler.within=dev.sparsa.cuda.CudaBackend. \
 *     dev.sparsa.bench.StackSampler dev.sparsa.cuda.CudaDecodeBench --batch 1 --n 131072 --rows topk
 * }</pre>
 * System properties: {@code sparsa.sampler.out} (the report file; default {@code stack-samples.txt}),
 * {@code sparsa.sampler.within} (default: every sample), {@code sparsa.sampler.micros} (the interval,
 * default 500) and {@code sparsa.sampler.prefixes} (comma-separated class-name prefixes of the
 * inclusive table; default {@code dev.sparsa,jcuda}).
 *
 * <p>Thread-safe: the counts are kept under one lock; {@link #write} may run while sampling goes on.
 */
public final class StackSampler implements AutoCloseable {
    private final Thread target;
    private final long intervalMicros;
    private final String within;
    private final Thread sampler;
    private final Map<String, Integer> self = new HashMap<>();
    private final Map<String, Integer> inclusive = new HashMap<>();
    private final Map<String, Integer> stacks = new HashMap<>();
    private int samples;
    private volatile boolean running = true;

    /**
     * Starts sampling {@code target}.
     *
     * @param target         the thread to sample
     * @param intervalMicros microseconds between samples, at least 50
     * @param within         text a frame ({@code class.method}) must contain for a sample to count; empty for all
     * @throws IllegalArgumentException if {@code target} or {@code within} is null or the interval is under 50 µs
     */
    public StackSampler(Thread target, long intervalMicros, String within) {
        if (target == null || within == null) {
            throw new IllegalArgumentException("target and within: must not be null");
        }
        if (intervalMicros < 50) {
            throw new IllegalArgumentException("intervalMicros: at least 50, got " + intervalMicros);
        }
        this.target = target;
        this.intervalMicros = intervalMicros;
        this.within = within;
        this.sampler = new Thread(this::loop, "stack-sampler");
        sampler.setDaemon(true);
        sampler.start();
    }

    private void loop() {
        while (running && target.isAlive()) {
            try {
                Thread.sleep(intervalMicros / 1000, (int) (intervalMicros % 1000) * 1000);
            } catch (InterruptedException e) {
                return;
            }
            record(target.getStackTrace());
        }
    }

    private void record(StackTraceElement[] st) {
        if (st.length == 0) {
            return;
        }
        boolean counted = within.isEmpty();
        for (int i = 0; i < st.length && !counted; i++) {
            counted = name(st[i]).contains(within);
        }
        if (!counted) {
            return;
        }
        StringBuilder stack = new StringBuilder();
        for (int i = 0; i < Math.min(st.length, 8); i++) {
            String cls = st[i].getClassName();
            stack.append(i == 0 ? "" : " < ").append(cls.substring(cls.lastIndexOf('.') + 1)).append('.')
                    .append(st[i].getMethodName());
        }
        synchronized (this) {
            samples++;
            self.merge(name(st[0]), 1, Integer::sum);
            Set<String> seen = new HashSet<>();
            for (StackTraceElement e : st) {
                if (seen.add(name(e))) {
                    inclusive.merge(name(e), 1, Integer::sum);
                }
            }
            stacks.merge(stack.toString(), 1, Integer::sum);
        }
    }

    private static String name(StackTraceElement e) {
        return e.getClassName() + "." + e.getMethodName();
    }

    /** The samples counted so far. */
    public synchronized int samples() {
        return samples;
    }

    /**
     * Writes the report: the sample count, then the inclusive counts of methods whose class name
     * starts with one of {@code prefixes} (top 80), the self counts (top 50) and the stacks (top 60),
     * each with its share of the samples.
     */
    public synchronized void write(PrintStream out, List<String> prefixes) {
        out.printf("samples %d (every %d us, within \"%s\")%n", samples, intervalMicros, within);
        out.println("== inclusive");
        table(out, inclusive, 80, k -> prefixes.stream().anyMatch(k::startsWith));
        out.println("== self");
        table(out, self, 50, k -> true);
        out.println("== stacks");
        table(out, stacks, 60, k -> true);
    }

    private void table(PrintStream out, Map<String, Integer> counts, int limit, java.util.function.Predicate<String> keep) {
        counts.entrySet().stream().filter(e -> keep.test(e.getKey()))
                .sorted(Map.Entry.<String, Integer>comparingByValue(Comparator.reverseOrder()).thenComparing(Map.Entry.comparingByKey()))
                .limit(limit)
                .forEach(e -> out.printf("%7d %5.1f%% %s%n", e.getValue(), 100.0 * e.getValue() / Math.max(1, samples), e.getKey()));
    }

    /** Stops sampling (the counts stay). */
    @Override
    public void close() {
        running = false;
        sampler.interrupt();
        try {
            sampler.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Runs {@code args[0]}'s {@code main} with the remaining arguments while sampling the calling thread;
     * the report goes to {@code sparsa.sampler.out} when the JVM exits.
     *
     * @throws IllegalArgumentException without a main class, or for a bad {@code sparsa.sampler.micros}
     */
    public static void main(String[] args) throws Throwable {
        if (args.length == 0) {
            throw new IllegalArgumentException("usage: StackSampler MAIN_CLASS [ARGS...] (system properties "
                    + "sparsa.sampler.out, .within, .micros, .prefixes)");
        }
        Path out = Path.of(System.getProperty("sparsa.sampler.out", "stack-samples.txt"));
        List<String> prefixes = List.of(System.getProperty("sparsa.sampler.prefixes", "dev.sparsa,jcuda").split(","));
        long micros;
        try {
            micros = Long.parseLong(System.getProperty("sparsa.sampler.micros", "500"));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("sparsa.sampler.micros: not a number: "
                    + System.getProperty("sparsa.sampler.micros"));
        }
        Method main = Class.forName(args[0]).getDeclaredMethod("main", String[].class);
        main.setAccessible(true); // benchmark mains of package-private classes
        StackSampler s = new StackSampler(Thread.currentThread(), micros, System.getProperty("sparsa.sampler.within", ""));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            s.close();
            try (PrintStream ps = new PrintStream(Files.newOutputStream(out))) {
                s.write(ps, prefixes);
            } catch (IOException e) {
                System.err.println("StackSampler: could not write " + out + ": " + e.getMessage());
            }
            System.err.println("StackSampler: " + s.samples() + " samples in " + out);
        }));
        try {
            main.invoke(null, (Object) Arrays.copyOfRange(args, 1, args.length));
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }
}
