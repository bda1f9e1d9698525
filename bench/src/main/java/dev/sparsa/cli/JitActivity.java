package dev.sparsa.cli;

import java.lang.management.ManagementFactory;
import java.util.function.Supplier;
import javax.management.ObjectName;

/**
 * Whether the JVM's just-in-time compilers are at work: a method being compiled, or methods queued
 * for compilation. Read from HotSpot's diagnostic command {@code Compiler.queue} (what {@code jcmd PID
 * Compiler.queue} prints) through the platform MBean server, which takes about 0.2 ms.
 *
 * <p>Why timed loops ask: a step timed while the compiler is still turning its hot loops into machine
 * code measures the interpreter or the first tier. On a machine of two busy cores the server compiler
 * can take seconds over the Vector API kernels, so a warm-up of fixed length can end first, and the
 * slow steps are steady until the compiled code lands (so "stop when no longer getting faster" does
 * not catch it either).
 *
 * <p>Where the diagnostic command is missing (another JVM, or the MBean refused), {@link #busy()} is
 * always false: warm-ups then last their fixed minimum. Thread-safe.
 */
public final class JitActivity {
    private static final ObjectName COMMANDS = name();

    private final Supplier<String> queue;

    private JitActivity(Supplier<String> queue) {
        this.queue = queue;
    }

    /** The running JVM's compilers. */
    public static JitActivity ofThisJvm() {
        return new JitActivity(JitActivity::compilerQueue);
    }

    /** Reads {@code Compiler.queue}'s text from {@code queue} (null: not available); for tests. */
    static JitActivity of(Supplier<String> queue) {
        return new JitActivity(queue);
    }

    /** Whether a compilation is running or queued now (false where that cannot be read). */
    public boolean busy() {
        String text = queue.get();
        return text != null && busy(text);
    }

    /**
     * Whether {@code Compiler.queue}'s text names a current compile or a non-empty queue: after the
     * line {@code Current compiles:}, any non-blank line before the first queue heading; after each
     * {@code ... compile queue:} heading, a first line other than {@code Empty}.
     */
    static boolean busy(String text) {
        String[] lines = text.split("\\R");
        boolean current = false;
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            if (line.startsWith("Current compiles:")) {
                current = true;
            } else if (line.endsWith("queue:")) {
                current = false;
                String next = i + 1 < lines.length ? lines[i + 1].strip() : "";
                if (!next.isEmpty() && !next.equals("Empty")) {
                    return true;
                }
            } else if (current && !line.isEmpty()) {
                return true;
            }
        }
        return false;
    }

    private static String compilerQueue() {
        if (COMMANDS == null) {
            return null;
        }
        try {
            return (String) ManagementFactory.getPlatformMBeanServer().invoke(COMMANDS, "compilerQueue",
                    new Object[] {null}, new String[] {String[].class.getName()});
        } catch (Exception | LinkageError e) {
            return null;
        }
    }

    private static ObjectName name() {
        try {
            return new ObjectName("com.sun.management:type=DiagnosticCommand");
        } catch (Exception e) {
            return null;
        }
    }
}
