package dev.sparsa.cpu;

/**
 * Which implementation of the CPU tile arithmetic runs: the Vector API kernel (needs {@code
 * --add-modules jdk.incubator.vector}) or the plain-Java scalar kernel that runs everywhere. Both
 * compute the same plan semantics within the numerics contract; they are not bitwise equal to each
 * other (different summation order), but each is bitwise deterministic on its own.
 */
public enum KernelFlavour {
    /** Register-blocked Vector API micro-kernels (jdk.incubator.vector). */
    VECTOR,
    /** Plain Java loops; the automatic fallback when the incubator module is not readable. */
    SCALAR
}
