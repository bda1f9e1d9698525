package dev.sparsa.internal;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Logger;

/**
 * The one place that decides whether Sparsa may use the incubating Vector API in this JVM, in the
 * manner of Apache Lucene's {@code VectorizationProvider}. Every SIMD consumer (the CPU kernel's tile
 * arithmetic, the estimators' scoring scans) asks here and loads its implementation from a {@code
 * *.panama} package by name, only when {@value #NAME} is readable; no other package references a
 * Vector API class, so without the module nothing fails to link and plain-Java twins run instead.
 * The first fallback in a JVM logs one WARNING that names the flag and what it costs.
 */
public final class VectorModule {
    /** The incubator module's name. */
    public static final String NAME = "jdk.incubator.vector";
    /** The JVM flag that makes the module readable. */
    public static final String FLAG = "--add-modules " + NAME;
    /**
     * What running without the module costs, as measured by the benchmarks in docs/PERFORMANCE.md
     * (section "What the Vector API is worth").
     */
    public static final String COST = "in plain Java the CPU attention kernel runs about 13-20x slower and"
            + " the estimators that score many keys (top-k, vertical-slash, LSH) about 2-4x slower";

    private static final Logger LOG = Logger.getLogger("dev.sparsa");
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private VectorModule() {
    }

    /**
     * The Vector API module when this JVM resolved it (the layer of Sparsa's own module, else the
     * boot layer), without touching a Vector API class.
     */
    public static Optional<Module> find() {
        ModuleLayer layer = VectorModule.class.getModule().getLayer();
        Optional<Module> m = layer == null ? Optional.empty() : layer.findModule(NAME);
        return m.isPresent() ? m : ModuleLayer.boot().findModule(NAME);
    }

    /** True when {@link #find()} finds the module. */
    public static boolean present() {
        return find().isPresent();
    }

    /**
     * Creates the Panama implementation {@code className} through its no-argument constructor, with
     * the caller's {@code lookup}: the implementation lives in a package its module does not export,
     * which only a lookup from inside that module may reach. The caller must first make its own
     * module read the vector module ({@code Module.addReads} only works from inside the module that
     * reads).
     *
     * @param <T>       the interface the implementation has
     * @param type      that interface
     * @param lookup    {@code MethodHandles.lookup()} of a class of the module that holds the implementation
     * @param className the implementation's binary name
     * @return the implementation
     * @throws UnsupportedOperationException when the module is missing, the implementation declines
     *     (its constructor throws UnsupportedOperationException) or cannot be loaded; the message
     *     says why and names {@link #FLAG} where it helps
     */
    public static <T> T load(Class<T> type, MethodHandles.Lookup lookup, String className) {
        if (!present()) {
            throw new UnsupportedOperationException("the Vector API module " + NAME + " is not readable; add the JVM flag '"
                    + FLAG + "'");
        }
        MethodHandle constructor;
        try {
            Class<?> c = lookup.findClass(className);
            constructor = lookup.findConstructor(c, MethodType.methodType(void.class));
        } catch (ReflectiveOperationException | LinkageError e) {
            throw declined(e instanceof ExceptionInInitializerError x && x.getCause() != null ? x.getCause() : e);
        }
        try {
            return type.cast(constructor.invoke());
        } catch (ExceptionInInitializerError e) {
            throw declined(e.getCause() != null ? e.getCause() : e);
        } catch (Throwable e) {
            throw declined(e);
        }
    }

    private static UnsupportedOperationException declined(Throwable cause) {
        if (cause instanceof UnsupportedOperationException u) {
            return new UnsupportedOperationException("the Vector API implementation declined: " + u.getMessage(), u);
        }
        return new UnsupportedOperationException("the Vector API implementation could not be loaded (" + cause
                + "); check the JVM flag '" + FLAG + "'", cause);
    }

    /**
     * Logs, once per JVM, the WARNING that Sparsa runs without the Vector API: {@code why}, the flag to
     * add and the cost. Later calls log nothing.
     *
     * @param why one line saying which part fell back and why
     * @return true if this call logged the warning
     */
    public static boolean warnOnce(String why) {
        if (!WARNED.compareAndSet(false, true)) {
            return false;
        }
        LOG.warning(warning(why));
        return true;
    }

    /** The text of the fallback warning for {@code why}. */
    public static String warning(String why) {
        String reason = why.replace("; add the JVM flag '" + FLAG + "'", "");
        return "Sparsa runs without the Vector API (" + reason + "): " + COST + ". Add the JVM flag '" + FLAG
                + "' for the SIMD code.";
    }
}
