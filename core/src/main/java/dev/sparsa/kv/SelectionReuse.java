package dev.sparsa.kv;

import java.util.Arrays;
import java.util.function.Supplier;

/**
 * The explicit rule for reusing a {@link DecodeSelection} instead of selecting afresh (as TidalDecode
 * reuses one layer's token selection in later layers, and as decode loops reselect every few
 * steps). A step is recognised by the cache's lengths: a call whose lengths differ from the previous
 * call's is a new step; calls at the same lengths (other layers of the same step) are the same step.
 *
 * <p>{@link #obtain} returns a fresh selection when any of these holds, else the remembered one:
 * <ol>
 *   <li>there is none yet, or {@link #refresh()} was called;
 *   <li>the pattern differs ({@code equals}) from the one the selection was made for;
 *   <li>the cache has another batch size or head count;
 *   <li>some sequence is shorter than when the selection was made (truncated, or a new sequence in
 *       its slot);
 *   <li>more than {@code steps} new steps have begun since the selection was made.
 * </ol>
 * So {@code steps = 0} selects at every step (sharing the selection only across the layers of a
 * step), {@code steps = r} makes one selection serve {@code r + 1} consecutive steps. Keys appended
 * since the selection are admitted only through the pattern's window: give the pattern a window of
 * at least {@code (r + 1) ·} rows per step so that the newest tokens are always seen.
 *
 * <p>TidalDecode: share one instance across the layers of a model; the first layer of a step selects,
 * later layers reuse; call {@link #refresh()} before a layer that must reselect (its re-selection
 * layer). Not thread-safe.
 */
public final class SelectionReuse {
    private final int steps;
    private DecodeSelection current;
    private DecodePattern pattern;
    private int[] lastLengths;
    private int stepsSinceMade;
    private boolean lastWasFresh;

    private SelectionReuse(int steps) {
        this.steps = steps;
    }

    /**
     * A selection serves the step it was made in and the next {@code steps} steps.
     *
     * @throws IllegalArgumentException if {@code steps < 0}
     */
    public static SelectionReuse forSteps(int steps) {
        if (steps < 0) {
            throw new IllegalArgumentException("steps: must be >= 0, got " + steps);
        }
        return new SelectionReuse(steps);
    }

    /** Steps a selection serves after the one it was made in. */
    public int steps() {
        return steps;
    }

    /** Forgets the remembered selection: the next {@link #obtain} selects afresh. */
    public void refresh() {
        current = null;
    }

    /** The remembered selection, or null. */
    public DecodeSelection current() {
        return current;
    }

    /** Whether the last {@link #obtain} made a fresh selection. */
    public boolean lastWasFresh() {
        return lastWasFresh;
    }

    /**
     * Whether the rule requires a fresh selection for a call on {@code cache} with {@code pattern}
     * now (without recording the call).
     */
    public boolean needsFresh(KvCache cache, DecodePattern pattern) {
        if (current == null || !pattern.equals(this.pattern) || cache.batch() != current.batch()
                || cache.kvHeads() != current.kvHeads()) {
            return true;
        }
        int[] lengths = cache.lengths();
        for (int b = 0; b < lengths.length; b++) {
            if (lengths[b] < current.madeAt(b)) {
                return true;
            }
        }
        int since = stepsSinceMade + (Arrays.equals(lengths, lastLengths) ? 0 : 1);
        return since > steps;
    }

    /**
     * The selection for a call on {@code cache} with {@code pattern}: the remembered one when the
     * rule allows, else {@code fresh.get()}, which is remembered.
     *
     * @throws IllegalArgumentException if an argument is null, or the fresh selection does not fit
     *     the cache
     */
    public DecodeSelection obtain(KvCache cache, DecodePattern pattern, Supplier<DecodeSelection> fresh) {
        if (cache == null || pattern == null || fresh == null) {
            throw new IllegalArgumentException("cache, pattern and fresh: must not be null");
        }
        int[] lengths = cache.lengths();
        if (needsFresh(cache, pattern)) {
            DecodeSelection s = fresh.get();
            s.requireFits(cache);
            current = s;
            this.pattern = pattern;
            stepsSinceMade = 0;
            lastWasFresh = true;
        } else {
            if (!Arrays.equals(lengths, lastLengths)) {
                stepsSinceMade++;
            }
            lastWasFresh = false;
        }
        lastLengths = lengths;
        return current;
    }

    @Override
    public String toString() {
        return "SelectionReuse[steps " + steps + ", " + (current == null ? "none" : current.description() + ", "
                + stepsSinceMade + " step(s) old") + "]";
    }
}
