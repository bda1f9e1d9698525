package dev.sparsa.cpu;

import dev.sparsa.internal.VectorModule;
import java.lang.invoke.MethodHandles;
import java.util.function.UnaryOperator;
import java.util.logging.Logger;

/**
 * Chooses the CPU kernel flavour, in the manner of Apache Lucene's VectorizationProvider: this class
 * never touches a Vector API class itself. It asks {@link VectorModule} whether {@code
 * jdk.incubator.vector} is readable, loads {@code dev.sparsa.cpu.panama.PanamaTileMath} by name, lets
 * its constructor decline, and logs one line (once per JVM) naming the flavour; a fallback also
 * raises the library's one WARNING that names the flag and the cost.
 *
 * <p>System properties:
 * <ul>
 *   <li>{@value #SCALAR_PROPERTY}{@code =true}: use the scalar kernel even where vectors work;
 *   <li>{@value TileMath#VECTOR_BITS_PROPERTY}{@code =128|256|512}: force the vector width (read by
 *       the vector kernel when it is first loaded).
 * </ul>
 */
final class TileMathProvider {
    /** Forces the scalar kernel when {@code true}. */
    static final String SCALAR_PROPERTY = "sparsa.cpu.scalar";
    /** Forces the vector width in bits (128, 256 or 512). */
    static final String VECTOR_BITS_PROPERTY = TileMath.VECTOR_BITS_PROPERTY;
    /** The flag that makes the vector kernel available. */
    static final String VECTOR_FLAG = VectorModule.FLAG;

    private static final String VECTOR_CLASS = "dev.sparsa.cpu.panama.PanamaTileMath";
    private static final Logger LOG = Logger.getLogger(TileMathProvider.class.getName());

    private TileMathProvider() {
    }

    /** The outcome of a lookup: the arithmetic chosen and one line saying why. */
    record Selection(TileMath math, String message) {
    }

    private static final class Best {
        static final Selection SELECTION = select(System::getProperty);

        static {
            LOG.info(SELECTION.message());
            if (SELECTION.math().flavour() == KernelFlavour.SCALAR && Vector.WHY_NOT != null) {
                VectorModule.warnOnce("the CPU kernel: " + Vector.WHY_NOT);
            }
        }
    }

    private static final class Vector {
        static final TileMath MATH;
        static final String WHY_NOT;

        static {
            TileMath m = null;
            String why;
            try {
                VectorModule.find().ifPresent(TileMathProvider.class.getModule()::addReads);
                m = VectorModule.load(TileMath.class, MethodHandles.lookup(), VECTOR_CLASS);
                why = null;
            } catch (UnsupportedOperationException e) {
                why = e.getMessage();
            }
            MATH = m;
            WHY_NOT = why;
        }
    }

    /** The best flavour for this JVM (logged once). */
    static TileMath best() {
        return Best.SELECTION.math();
    }

    /** The line the lookup logged. */
    static String bestMessage() {
        return Best.SELECTION.message();
    }

    /** The scalar arithmetic (always available). */
    static TileMath scalar() {
        return new ScalarTileMath();
    }

    /**
     * The vector arithmetic.
     *
     * @throws UnsupportedOperationException saying why it cannot run here and what to add
     */
    static TileMath vector() {
        if (Vector.MATH == null) {
            throw new UnsupportedOperationException(Vector.WHY_NOT);
        }
        return Vector.MATH;
    }

    /**
     * Decides the flavour from the given system properties, without caching or logging (tests call
     * this with forced properties).
     */
    static Selection select(UnaryOperator<String> properties) {
        if (Boolean.parseBoolean(properties.apply(SCALAR_PROPERTY))) {
            return new Selection(scalar(), "sparsa cpu kernel: scalar (forced by -D" + SCALAR_PROPERTY + "=true)");
        }
        try {
            TileMath m = vector();
            return new Selection(m, "sparsa cpu kernel: " + m.description());
        } catch (UnsupportedOperationException e) {
            return new Selection(scalar(), "sparsa cpu kernel: scalar fallback, " + e.getMessage());
        }
    }
}
