package dev.sparsa.bench;

import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The decode arithmetic alone ({@code dev.sparsa.cpu.DecodeMathParts}: one GQA group of 4 query
 * vectors against 256 cached keys at D = 128, vector flavour, rows in a Java array) of several builds
 * in one JVM, alternating: each argument is a {@code benchmarks.jar}, loaded in its own class loader;
 * every round runs each jar's parts for one slice each on two threads (each thread its own rows, as
 * a decode step's two workers), the jars in turn (reversed every other round). Printed per round:
 * GB/s of K and V bytes consumed, summed over the two threads; at the end the median of each. A
 * first round warms up and is not counted; every round allocates the rows anew. System properties: {@code rounds} (6), {@code slice} in
 * seconds (0.5), {@code parts} (default {@code scores,accumulate,step}), {@code dtypes} (default
 * {@code f32,bf16}). Separate JMH runs on a shared machine do not see the same conditions; this does.
 */
public final class DecodeMathAlternation {
    private record Part(Object[] states, Method setup, Method call, Object[] counters, Field gb) {}

    private DecodeMathAlternation() {
    }

    /**
     * Runs the alternation over the jars named by {@code args}.
     *
     * @param args paths of benchmark jars
     * @throws Exception when a jar cannot be loaded or a part fails
     */
    public static void main(String[] args) throws Exception {
        int rounds = Integer.parseInt(System.getProperty("rounds", "6"));
        double slice = Double.parseDouble(System.getProperty("slice", "0.5"));
        String[] parts = System.getProperty("parts", "scores,accumulate,step").split(",");
        String[] dtypes = System.getProperty("dtypes", "f32,bf16").split(",");
        List<ClassLoader> loaders = new ArrayList<>();
        for (String a : args) {
            loaders.add(new URLClassLoader(new URL[] {Path.of(a).toUri().toURL()}, ClassLoader.getPlatformClassLoader()));
        }
        int kinds = dtypes.length * parts.length;
        Part[][] p = new Part[kinds][args.length];
        for (int d = 0; d < dtypes.length; d++) {
            for (int k = 0; k < parts.length; k++) {
                for (int j = 0; j < args.length; j++) {
                    ClassLoader cl = loaders.get(j);
                    Class<?> c = cl.loadClass("dev.sparsa.cpu.DecodeMathParts");
                    Class<?> g = cl.loadClass("dev.sparsa.bench.GigaBytes");
                    Object[] states = new Object[2];
                    Object[] counters = new Object[2];
                    for (int t = 0; t < 2; t++) {
                        Object s = c.getConstructor().newInstance();
                        c.getField("dtype").set(s, dtypes[d]);
                        c.getField("flavour").set(s, "vector");
                        c.getField("memory").set(s, "heap");
                        c.getMethod("setup").invoke(s);
                        states[t] = s;
                        counters[t] = g.getConstructor().newInstance();
                    }
                    p[d * parts.length + k][j] = new Part(states, c.getMethod("setup"), c.getMethod(parts[k], g), counters,
                            g.getField("gbytes"));
                }
            }
        }
        double[][][] gbs = new double[kinds][args.length][rounds];
        for (int r = -1; r < rounds; r++) {
            StringBuilder line = new StringBuilder("round " + r + " |");
            // fresh rows every round, so that the medians average over where the arrays land; a jar
            // against a copy of itself still differed by up to 9 % (16 % with rows kept for the whole
            // run): the same code compiled and placed apart, read differences below that as noise
            for (Part[] kind : p) {
                for (Part x : kind) {
                    for (Object s : x.states) {
                        x.setup.invoke(s);
                    }
                }
            }
            for (int k = 0; k < kinds; k++) {
                line.append(' ').append(dtypes[k / parts.length]).append(':').append(parts[k % parts.length]);
                for (int jj = 0; jj < args.length; jj++) {
                    int j = (r & 1) == 0 ? jj : args.length - 1 - jj;
                    double g = twoThreads(slice, p[k][j]);
                    if (r >= 0) {
                        gbs[k][j][r] = g;
                    }
                }
                for (int j = 0; j < args.length; j++) {
                    line.append(String.format(" %.1f", r >= 0 ? gbs[k][j][r] : 0));
                }
                line.append(" |");
            }
            System.out.println(line);
        }
        for (int k = 0; k < kinds; k++) {
            for (int j = 0; j < args.length; j++) {
                System.out.printf("%s:%s %s: median %.1f GB/s (min %.1f, max %.1f)%n", dtypes[k / parts.length],
                        parts[k % parts.length], args[j], median(gbs[k][j]), Arrays.stream(gbs[k][j]).min().getAsDouble(),
                        Arrays.stream(gbs[k][j]).max().getAsDouble());
            }
        }
        System.exit(0);
    }

    private static double twoThreads(double seconds, Part part) throws Exception {
        double[] rate = new double[2];
        Thread[] th = new Thread[2];
        for (int i = 0; i < 2; i++) {
            int id = i;
            th[i] = new Thread(() -> {
                try {
                    part.gb.setDouble(part.counters[id], 0);
                    long t0 = System.nanoTime();
                    long end = t0 + (long) (seconds * 1e9);
                    long t;
                    do {
                        for (int n = 0; n < 64; n++) {
                            part.call.invoke(part.states[id], part.counters[id]);
                        }
                        t = System.nanoTime();
                    } while (t < end);
                    rate[id] = part.gb.getDouble(part.counters[id]) / ((t - t0) * 1e-9);
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
            });
            th[i].start();
        }
        for (Thread t : th) {
            t.join();
        }
        return rate[0] + rate[1];
    }

    private static double median(double[] a) {
        double[] c = a.clone();
        Arrays.sort(c);
        return c.length % 2 == 1 ? c[c.length / 2] : (c[c.length / 2 - 1] + c[c.length / 2]) / 2;
    }
}
