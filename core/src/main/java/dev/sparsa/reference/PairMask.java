package dev.sparsa.reference;

/** A token-level mask for the dense oracle: whether query row {@code q} may attend to key {@code k}. */
@FunctionalInterface
public interface PairMask {
    /** Admits everything (causality, if any, comes from the options). */
    PairMask ALL = (b, h, q, k) -> true;

    /**
     * @param batch batch index
     * @param head  query head index
     * @param q     query row index (not position)
     * @param k     key position
     */
    boolean admits(int batch, int head, int q, int k);
}
