package dev.sparsa.cli;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import javax.management.ObjectName;
import org.junit.jupiter.api.Test;

class JitActivityTest {
    /** Compiler.queue's text as JDK 25 prints it with nothing to do. */
    private static final String IDLE = """
            Current compiles:\s

            C1 compile queue:
            Empty

            C2 compile queue:
            Empty

            """;

    @Test
    void anIdleQueueIsNotBusy() {
        assertFalse(JitActivity.busy(IDLE));
        assertFalse(JitActivity.of(() -> IDLE).busy());
    }

    @Test
    void aCurrentCompileIsBusy() {
        assertTrue(JitActivity.busy(IDLE.replace("Current compiles: \n",
                "Current compiles: \nC2 CompilerThread0  1738       4       java.lang.String::replace (42 bytes)\n")));
    }

    @Test
    void aQueuedMethodIsBusyInEitherQueue() {
        String queued = "1740       3       java.util.WeakHashMap::get (75 bytes)";
        assertTrue(JitActivity.busy(IDLE.replaceFirst("C1 compile queue:\nEmpty", "C1 compile queue:\n" + queued)));
        assertTrue(JitActivity.busy(IDLE.replaceFirst("C2 compile queue:\nEmpty", "C2 compile queue:\n" + queued)));
    }

    @Test
    void withoutTheDiagnosticCommandItIsNeverBusy() {
        assertFalse(JitActivity.of(() -> null).busy());
    }

    @Test
    void thisJvmsQueueReadsAsTheDiagnosticCommandPrintsIt() throws Exception {
        // the parse above is checked against this JVM's own text, not only against the copy in IDLE
        String text = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                new ObjectName("com.sun.management:type=DiagnosticCommand"), "compilerQueue", new Object[] {null},
                new String[] {String[].class.getName()});
        assertTrue(text.contains("Current compiles:") && text.contains("C1 compile queue:"), text);
        // the JIT goes quiet when nothing new runs (within 10 s on a loaded machine)
        JitActivity jit = JitActivity.ofThisJvm();
        long end = System.nanoTime() + 10_000_000_000L;
        boolean quiet = false;
        while (!quiet && System.nanoTime() < end) {
            quiet = !jit.busy();
            Thread.sleep(20);
        }
        assertTrue(quiet, "the JIT stayed busy for 10 s");
    }
}
