package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A kernel computation's bits, as a string, from C2-compiled code (in this JVM, after a warm-up) and
 * from the interpreter (a child JVM with {@code -Xint} running a test class's {@code main}, which
 * prints {@link #print}'s two lines), for the scalar flavour and, where this JVM picks it, the vector
 * flavour; a flavour that does not run reads {@code "none"}.
 */
final class JitTierBits {
    private JitTierBits() {
    }

    /** Each flavour's bits from compiled and from interpreted code. */
    record Tiers(String compiledScalar, String interpretedScalar, String compiledVector, String interpretedVector) {
    }

    /**
     * The body of the child JVM's {@code main}: the scalar flavour's bits on one line, then the
     * vector flavour's or {@code none} (also when {@code args} is not empty).
     */
    static void print(Function<TileMath, String> bits, String[] args) {
        System.out.println(bits.apply(TileMathProvider.scalar()));
        boolean vector = args.length == 0 && TileMathProvider.best().flavour() == KernelFlavour.VECTOR;
        System.out.println(vector ? bits.apply(TileMathProvider.vector()) : "none");
    }

    /**
     * Runs {@code bits} 3000 times per flavour here (enough calls for C2 to compile the loops), then
     * {@code mainClass} in a child JVM with {@code -Xint} and this JVM's vector width; each value
     * string ends with a space, as {@code bits} writes it.
     */
    static Tiers compiledAndInterpreted(Function<TileMath, String> bits, Class<?> mainClass)
            throws IOException, InterruptedException {
        TileMath vector = TileMathProvider.best().flavour() == KernelFlavour.VECTOR ? TileMathProvider.vector() : null;
        String scalar = null;
        String vec = null;
        for (int i = 0; i < 3000; i++) { // enough calls for C2 to compile the loops
            scalar = bits.apply(TileMathProvider.scalar());
            vec = vector != null ? bits.apply(vector) : "none";
        }
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        List<String> cmd = new ArrayList<>(List.of(java.toString(), "-Xint", "--add-modules", "jdk.incubator.vector"));
        String width = System.getProperty(TileMathProvider.VECTOR_BITS_PROPERTY);
        if (width != null) {
            cmd.add("-D" + TileMathProvider.VECTOR_BITS_PROPERTY + "=" + width); // the same vector width as here
        }
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), mainClass.getName()));
        if (vector == null) {
            cmd.add("scalar-only");
        }
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String[] lines = new String(p.getInputStream().readAllBytes(), StandardCharsets.US_ASCII).split("\n");
        assertTrue(p.waitFor(300, TimeUnit.SECONDS) && p.exitValue() == 0, "child JVM");
        return new Tiers(scalar, lines[0].trim() + " ", vec, lines[1].trim().equals("none") ? "none" : lines[1].trim() + " ");
    }
}
