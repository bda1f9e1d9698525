package dev.sparsa.bench;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Dense decode of several builds in one JVM, alternating: each argument is a {@code benchmarks.jar}
 * (of this or another commit), loaded in its own class loader; every round measures the copy rate
 * ({@link MemoryCopy}, two threads, bytes read plus written) and the read rate (two threads summing
 * their own 256 MiB, as {@link ReadBandwidth}) for half a slice each, then runs each jar's {@link
 * DecodeAttention} step (32 query / 8 KV heads, head dim 128, 32768 keys, 2 threads, 16-token pages)
 * for one slice per kind, the jars in turn (reversed every other round). Printed per round: GB/s of
 * each, and GB/s per two CPU-seconds of the process (what two fully busy threads would reach); at the
 * end the medians and each decode's share of its round's copy. A first round warms up and is not
 * counted. System properties: {@code rounds} (6), {@code slice} in seconds (1.0), {@code kinds}
 * ({@code dtype:pattern/layout} list, default dense f32 and bf16 on both layouts), {@code memory}
 * ({@code heap} or {@code native}: where the caches live, for jars whose {@link DecodeAttention} has
 * that parameter; default heap), {@code cold} ({@code true}: a buffer larger than the CPU's caches is read
 * before each step, {@code coldMib} MiB, by default {@link CacheEviction#defaultMib()}, so that the caches hold
 * none of its rows, as in a loop whose other layers run between two steps of a layer; the GB/s then count
 * the steps' time alone). A step that allocates over 8 MiB on the heap (every
 * thread, HotSpot's count) is marked in its round's line with the megabytes it allocated, and the
 * summary gives each build's largest allocation per step: the sign of a Vector API loop running without
 * the JIT's intrinsics, which makes that build's figures not its kernels'. Before the rounds, each build
 * and kind runs until its steps allocate less than that (at most 30 s; the time is printed). A comparison of builds under
 * the same conditions, which separate JMH runs on a shared machine are not.
 */
public final class DecodeJarAlternation {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final java.lang.management.ThreadMXBean THREADS = java.lang.management.ManagementFactory.getThreadMXBean();
    private static final com.sun.management.OperatingSystemMXBean OS =
            (com.sun.management.OperatingSystemMXBean) java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    /** The longest warm-up of one build and kind before the rounds (a loop left without intrinsics never settles). */
    private static final long WARM_CAP_NS = 30_000_000_000L;

    private record Bench(String label, Object state, Method step, Object counter, Field gb) {}

    private DecodeJarAlternation() {
    }

    /**
     * Runs the alternation over the jars named by {@code args}.
     *
     * @param args paths of benchmark jars
     * @throws Exception when a jar cannot be loaded or a step fails
     */
    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(System.getProperty("rounds", "6"));
        double slice = Double.parseDouble(System.getProperty("slice", "1.0"));
        String memory = System.getProperty("memory", "heap");
        CacheEviction eviction = Boolean.getBoolean("cold")
                ? new CacheEviction(Integer.getInteger("coldMib", CacheEviction.defaultMib())) : null;
        if (eviction != null) {
            System.out.printf("caches cold: %d MiB read before each step%n", eviction.mib());
        }
        String[] kinds = System.getProperty("kinds", "f32:dense/contiguous,f32:dense/paged,bf16:dense/contiguous,bf16:dense/paged").split(",");
        List<String> labels = new ArrayList<>();
        List<ClassLoader> loaders = new ArrayList<>();
        for (String a : args) {
            labels.add(a);
            loaders.add(new URLClassLoader(new URL[] {Path.of(a).toUri().toURL()}, ClassLoader.getPlatformClassLoader()));
        }
        Bench[][] b = new Bench[kinds.length][args.length];
        for (int k = 0; k < kinds.length; k++) {
            for (int j = 0; j < args.length; j++) {
                ClassLoader cl = loaders.get(j);
                Class<?> c = cl.loadClass("dev.sparsa.bench.DecodeAttention");
                Object s = c.getConstructor().newInstance();
                String[] p = kinds[k].split(":");
                c.getField("dtype").set(s, p[0]);
                c.getField("kind").set(s, p[1]);
                c.getField("kvLength").setInt(s, 32768);
                c.getField("budget").setDouble(s, 0.125);
                c.getField("threads").setInt(s, 2);
                c.getField("pageSize").setInt(s, 16);
                if (Arrays.stream(c.getFields()).anyMatch(f -> f.getName().equals("memory"))) {
                    c.getField("memory").set(s, memory);
                }
                c.getMethod("setup").invoke(s);
                Class<?> g = cl.loadClass("dev.sparsa.bench.GigaBytes");
                Object counter = g.getConstructor().newInstance();
                b[k][j] = new Bench(labels.get(j), s, c.getMethod("step", g), counter, g.getField("gbytes"));
            }
        }
        Class<?> mc = loaders.get(0).loadClass("dev.sparsa.bench.MemoryCopy");
        Object copy = mc.getConstructor(int.class, long.class).newInstance(2, 256L << 20);
        Method copyOnce = mc.getMethod("copyOnce", int.class);
        long moved = (long) mc.getMethod("bytesMovedPerCopy").invoke(copy);
        float[][] data = new float[2][64 << 20];
        for (float[] d : data) {
            Arrays.fill(d, 1f);
        }
        double[][][] gbs = new double[kinds.length][args.length][rounds];
        double[][][] cpu = new double[kinds.length][args.length][rounds];
        long[][] mostAllocated = new long[kinds.length][args.length];
        StepAllocation allocation = StepAllocation.ofThisJvm();
        // each build's steps until they stop allocating (the JIT has compiled their Vector API loops), at most
        // WARM_CAP_NS each: a fixed warm-up round can end while a loop still runs interpreted
        for (int k = 0; k < kinds.length; k++) {
            for (int j = 0; j < args.length; j++) {
                Bench x = b[k][j];
                long w0 = System.nanoTime();
                long perStep;
                do {
                    long a0 = allocation.total();
                    long steps = 0;
                    long until = System.nanoTime() + 200_000_000L;
                    do {
                        x.step.invoke(x.state, x.counter);
                        steps++;
                    } while (System.nanoTime() < until);
                    perStep = (allocation.total() - a0) / steps;
                } while (perStep > StepAllocation.FLAG_FLOOR_BYTES && System.nanoTime() - w0 < WARM_CAP_NS);
                System.out.printf("warm-up %s %s: %.1f s, then %.2f MB allocated a step%n", kinds[k], x.label(),
                        (System.nanoTime() - w0) / 1e9, perStep / 1e6);
            }
        }
        double[] copies = new double[rounds];
        double[] reads = new double[rounds];
        for (int r = -1; r < rounds; r++) {
            double cp = twoThreads(slice / 2, id -> {
                try {
                    copyOnce.invoke(copy, id);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
                return moved;
            });
            double rd = twoThreads(slice / 2, id -> read(data[id]));
            StringBuilder line = new StringBuilder(String.format("round %d copy %.1f read %.1f |", r, cp, rd));
            StringBuilder marks = new StringBuilder();
            for (int k = 0; k < kinds.length; k++) {
                for (int jj = 0; jj < args.length; jj++) {
                    int j = (r & 1) == 0 ? jj : args.length - 1 - jj;
                    Bench x = b[k][j];
                    x.gb.setDouble(x.counter, 0);
                    long c0 = OS.getProcessCpuTime();
                    long t0 = System.nanoTime();
                    long end = t0 + (long) (slice * 1e9);
                    long t;
                    long stepNs = 0;
                    long evictCpu = 0;
                    long steps = 0;
                    long allocated = 0;
                    do {
                        if (eviction != null) {
                            long e0 = THREADS.getCurrentThreadCpuTime();
                            eviction.run();
                            evictCpu += THREADS.getCurrentThreadCpuTime() - e0;
                        }
                        long a0 = allocation.total();
                        long s0 = System.nanoTime();
                        x.step.invoke(x.state, x.counter);
                        t = System.nanoTime();
                        stepNs += t - s0;
                        allocated += allocation.total() - a0;
                        steps++;
                    } while (t < end);
                    long perStep = allocated / steps;
                    double g = x.gb.getDouble(x.counter) / (stepNs * 1e-9);
                    double gc = 2 * x.gb.getDouble(x.counter) / ((OS.getProcessCpuTime() - c0 - evictCpu) * 1e-9);
                    if (r >= 0) {
                        gbs[k][j][r] = g;
                        cpu[k][j][r] = gc;
                        mostAllocated[k][j] = Math.max(mostAllocated[k][j], perStep);
                    }
                    if (perStep > StepAllocation.FLAG_FLOOR_BYTES) {
                        marks.append(String.format(" [%s %s allocated %.1f MB a step]", kinds[k], labels.get(j), perStep / 1e6));
                    }
                }
                line.append(' ').append(kinds[k]);
                for (int j = 0; j < args.length; j++) {
                    line.append(String.format(" %.1f(cpu %.1f)", r >= 0 ? gbs[k][j][r] : 0, r >= 0 ? cpu[k][j][r] : 0));
                }
                line.append(" |");
            }
            if (r >= 0) {
                copies[r] = cp;
                reads[r] = rd;
            }
            System.out.println(line.append(marks));
        }
        System.out.printf("median copy %.1f read %.1f%n", median(copies), median(reads));
        for (int k = 0; k < kinds.length; k++) {
            for (int j = 0; j < args.length; j++) {
                double[] ratio = new double[rounds];
                for (int r = 0; r < rounds; r++) {
                    ratio[r] = gbs[k][j][r] / copies[r];
                }
                System.out.printf("%s %s: median %.1f GB/s (per 2 cpu-seconds %.1f), of the round's copy: median %.0f %% (min %.0f, max %.0f);"
                                + " at most %.2f MB allocated a step%n", kinds[k],
                        labels.get(j), median(gbs[k][j]), median(cpu[k][j]), 100 * median(ratio), 100 * Arrays.stream(ratio).min().getAsDouble(),
                        100 * Arrays.stream(ratio).max().getAsDouble(), mostAllocated[k][j] / 1e6);
            }
        }
        System.exit(0);
    }

    private interface Work {
        long run(int id) throws Exception;
    }

    private static double twoThreads(double seconds, Work w) throws Exception {
        long[] bytes = new long[2];
        long[] ns = new long[2];
        Thread[] th = new Thread[2];
        for (int i = 0; i < 2; i++) {
            int id = i;
            th[i] = new Thread(() -> {
                try {
                    long t0 = System.nanoTime();
                    long end = t0 + (long) (seconds * 1e9);
                    long t;
                    do {
                        bytes[id] += w.run(id);
                        t = System.nanoTime();
                    } while (t < end);
                    ns[id] = t - t0;
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            th[i].start();
        }
        for (Thread t : th) {
            t.join();
        }
        return bytes[0] / (ns[0] * 1e-9) * 1e-9 + bytes[1] / (ns[1] * 1e-9) * 1e-9;
    }

    private static float sink;

    private static long read(float[] x) {
        int l = F.length();
        FloatVector s0 = FloatVector.zero(F);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        for (int i = 0; i + 4 * l <= x.length; i += 4 * l) {
            s0 = s0.add(FloatVector.fromArray(F, x, i));
            s1 = s1.add(FloatVector.fromArray(F, x, i + l));
            s2 = s2.add(FloatVector.fromArray(F, x, i + 2 * l));
            s3 = s3.add(FloatVector.fromArray(F, x, i + 3 * l));
        }
        sink += s0.add(s1).add(s2.add(s3)).lane(0);
        return 4L * x.length;
    }

    private static double median(double[] a) {
        double[] c = a.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }
}
