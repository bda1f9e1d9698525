package dev.sparsa.cpu;

import dev.sparsa.internal.VectorModule;
import java.lang.invoke.MethodHandles;

/**
 * The decode arithmetic of a kernel flavour: {@link ScalarDecodeMath}, or {@code
 * dev.sparsa.cpu.panama.PanamaDecodeMath} loaded by name through {@link VectorModule} as {@link
 * TileMathProvider} loads the tile arithmetic. The vector one is only asked for when the vector
 * flavour is in use, which {@link TileMathProvider} grants only where {@code jdk.incubator.vector} is
 * readable, so no class loaded without the module touches the Vector API.
 */
final class DecodeMathProvider {
    private static final String VECTOR_CLASS = "dev.sparsa.cpu.panama.PanamaDecodeMath";

    private DecodeMathProvider() {
    }

    private static final class Vector {
        static final DecodeMath MATH;
        static final String WHY_NOT;

        static {
            DecodeMath m = null;
            String why;
            try {
                VectorModule.find().ifPresent(DecodeMathProvider.class.getModule()::addReads);
                m = VectorModule.load(DecodeMath.class, MethodHandles.lookup(), VECTOR_CLASS);
                why = null;
            } catch (UnsupportedOperationException e) {
                why = e.getMessage();
            }
            MATH = m;
            WHY_NOT = why;
        }
    }

    /**
     * The decode arithmetic for {@code flavour}.
     *
     * @throws IllegalStateException if {@code flavour} is VECTOR and the vector decode arithmetic
     *     cannot be loaded here (the tile arithmetic of the same width could)
     */
    static DecodeMath forFlavour(KernelFlavour flavour) {
        if (flavour != KernelFlavour.VECTOR) {
            return new ScalarDecodeMath();
        }
        if (Vector.MATH == null) {
            throw new IllegalStateException("the vector decode kernel could not be loaded: " + Vector.WHY_NOT);
        }
        return Vector.MATH;
    }
}
