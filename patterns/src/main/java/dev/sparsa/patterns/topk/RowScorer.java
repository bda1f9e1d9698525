package dev.sparsa.patterns.topk;

/** Scores every key a query row may see, for a per-query selection. */
@FunctionalInterface
public interface RowScorer {
    /** Writes a score for each key in {@code [0, lastKey]} into {@code scores}; larger is better. */
    void score(int row, int lastKey, float[] scores);
}
