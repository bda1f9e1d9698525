package dev.sparsa.plan;

/** Receives the admitted keys of one query row, with the log-weight each adds to its score. */
@FunctionalInterface
public interface KeyVisitor {
    /**
     * @param key the key position, in {@code [0, keyLength)}
     * @param logWeight added to the (soft-capped) score; 0 for keys of blocks
     */
    void accept(int key, float logWeight);
}
