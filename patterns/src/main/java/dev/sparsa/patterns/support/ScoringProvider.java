package dev.sparsa.patterns.support;

import dev.sparsa.internal.VectorModule;
import java.lang.invoke.MethodHandles;
import java.util.logging.Logger;

/**
 * Chooses the estimators' {@link ScoringSupport} once per JVM, in the manner of Apache Lucene's
 * VectorizationProvider: it never touches a Vector API class itself, asks {@link VectorModule}
 * whether {@code jdk.incubator.vector} is readable, and only then loads the Panama implementation by
 * name. Without the module (or with {@code -Dsparsa.patterns.scalar=true}) the plain-Java twin runs,
 * and a fallback raises the library's one WARNING that names the flag and the cost.
 */
public final class ScoringProvider {
    /** Forces the plain-Java scans when {@code true}. */
    public static final String SCALAR_PROPERTY = "sparsa.patterns.scalar";

    private static final String PANAMA_CLASS = "dev.sparsa.patterns.support.panama.PanamaScoringSupport";
    private static final Logger LOG = Logger.getLogger(ScoringProvider.class.getName());

    private ScoringProvider() {
    }

    private static final class Holder {
        static final ScoringSupport SUPPORT = lookup();
    }

    /** The implementation every estimator uses in this JVM. */
    public static ScoringSupport get() {
        return Holder.SUPPORT;
    }

    /** The plain-Java implementation (always available). */
    public static ScoringSupport scalar() {
        return new ScalarScoringSupport();
    }

    /**
     * The Vector API implementation.
     *
     * @throws UnsupportedOperationException saying why it cannot run here and which flag to add
     */
    public static ScoringSupport vector() {
        VectorModule.find().ifPresent(ScoringProvider.class.getModule()::addReads);
        return VectorModule.load(ScoringSupport.class, MethodHandles.lookup(), PANAMA_CLASS);
    }

    private static ScoringSupport lookup() {
        if (Boolean.getBoolean(SCALAR_PROPERTY)) {
            LOG.info("sparsa estimators: plain Java (forced by -D" + SCALAR_PROPERTY + "=true)");
            return scalar();
        }
        try {
            ScoringSupport s = vector();
            LOG.info("sparsa estimators: " + s.description());
            return s;
        } catch (UnsupportedOperationException e) {
            VectorModule.warnOnce("the estimators: " + e.getMessage());
            return scalar();
        }
    }
}
