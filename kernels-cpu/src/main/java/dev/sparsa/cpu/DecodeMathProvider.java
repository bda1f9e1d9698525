package dev.sparsa.cpu;

/**
 * The decode arithmetic of a kernel flavour: {@link ScalarDecodeMath}, or {@link PanamaDecodeMath}
 * loaded by name (only ever asked for when the vector flavour is in use, which {@link
 * TileMathProvider} grants only where {@code jdk.incubator.vector} is readable), so that no class
 * loaded without the module touches the Vector API.
 */
final class DecodeMathProvider {
    private static final String VECTOR_CLASS = "dev.sparsa.cpu.PanamaDecodeMath";

    private DecodeMathProvider() {
    }

    private static final class Vector {
        static final DecodeMath MATH = load();

        private static DecodeMath load() {
            try {
                Class<?> c = Class.forName(VECTOR_CLASS, true, DecodeMathProvider.class.getClassLoader());
                return (DecodeMath) c.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException | LinkageError e) {
                throw new IllegalStateException("the vector decode kernel could not be loaded: " + e, e);
            }
        }
    }

    /** The decode arithmetic for {@code flavour}. */
    static DecodeMath forFlavour(KernelFlavour flavour) {
        return flavour == KernelFlavour.VECTOR ? Vector.MATH : new ScalarDecodeMath();
    }
}
