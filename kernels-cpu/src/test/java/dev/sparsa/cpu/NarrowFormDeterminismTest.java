package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The narrow score form (dot products along the head dimension, softmax along the keys) gives the
 * same bits in every JIT tier: the interpreter ({@code -Xint}, in a child JVM) and C2 (here, after a
 * warm-up) agree bit for bit. Its sums across lanes are therefore lanewise additions in a fixed
 * order, never {@code reduceLanes(ADD)}, whose order the compiled and interpreted forms do not share;
 * otherwise a row's bits would depend on whether the thread that ran it had reached compiled code.
 */
class NarrowFormDeterminismTest {
    private static final int ROWS = 3;
    private static final int KEYS = 37;

    /** Scores and one softmax step of a few rows against gathered keys, for head dims with and without a tail. */
    static String bits(TileMath math) {
        StringBuilder b = new StringBuilder();
        for (int dim : new int[] {8, 24, 64, 72, 128}) {
            SplittableRandom rnd = new SplittableRandom(dim);
            float[] q = new float[ROWS * dim];
            float[] k = new float[KEYS * dim + 5];
            int[] kOff = new int[KEYS];
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) rnd.nextDouble(-3, 3);
            }
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) rnd.nextDouble(-3, 3);
            }
            for (int j = 0; j < KEYS; j++) {
                kOff[j] = (KEYS - 1 - j) * dim; // gathered: any order
            }
            int ldR = KEYS + 16;
            float[] s = new float[ROWS * ldR];
            math.scoresByRow(q, ROWS, k, kOff, dim, KEYS, s, ldR);
            float[] m = {Float.NEGATIVE_INFINITY, 2.5f, 40f};
            float[] l = {0f, 1.5f, 3f};
            float[] alpha = new float[ROWS];
            math.softmaxByRow(s, ldR, KEYS, ROWS, m, l, alpha);
            for (float[] a : new float[][] {s, m, l, alpha}) {
                for (float x : a) {
                    b.append(Integer.toHexString(Float.floatToRawIntBits(x))).append(' ');
                }
            }
        }
        return b.toString();
    }

    /** In a child JVM: the narrow form's bits of each flavour, one line each. */
    public static void main(String[] args) {
        System.out.println(bits(TileMathProvider.scalar()));
        boolean vector = args.length == 0 && TileMathProvider.best().flavour() == KernelFlavour.VECTOR;
        System.out.println(vector ? bits(TileMathProvider.vector()) : "none");
    }

    @Test
    void interpretedAndCompiledCodeGiveTheSameBits() throws IOException, InterruptedException {
        TileMath vector = TileMathProvider.best().flavour() == KernelFlavour.VECTOR ? TileMathProvider.vector() : null;
        String scalar = null;
        String vec = null;
        for (int i = 0; i < 3000; i++) { // enough calls for C2 to compile the loops
            scalar = bits(TileMathProvider.scalar());
            vec = vector != null ? bits(vector) : "none";
        }
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-Xint", "--add-modules", "jdk.incubator.vector"));
        String width = System.getProperty(TileMathProvider.VECTOR_BITS_PROPERTY);
        if (width != null) {
            cmd.add("-D" + TileMathProvider.VECTOR_BITS_PROPERTY + "=" + width); // the same vector width as here
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), NarrowFormDeterminismTest.class.getName()));
        if (vector == null) {
            cmd.add("scalar-only");
        }
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String[] lines = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).split("\n");
        assertTrue(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0, "child JVM");
        assertEquals("", firstDifference(scalar, lines[0].trim() + " "), "scalar flavour: -Xint vs C2");
        assertEquals("", firstDifference(vec, lines[1].trim().equals("none") ? "none" : lines[1].trim() + " "),
                "vector flavour: -Xint vs C2");
    }

    /** Empty when equal, else the first value that differs (compiled, then interpreted). */
    private static String firstDifference(String compiled, String interpreted) {
        String[] a = compiled.split(" ");
        String[] b = interpreted.split(" ");
        for (int i = 0; i < Math.min(a.length, b.length); i++) {
            if (!a[i].equals(b[i])) {
                return "value " + i + ": " + a[i] + " compiled, " + b[i] + " interpreted";
            }
        }
        return a.length == b.length ? "" : a.length + " values compiled, " + b.length + " interpreted";
    }
}
