package dev.sparsa.spec;

/**
 * Which plan the drop-in call runs for a pattern.
 *
 * <ul>
 *   <li>{@link #AUTO} (the default of {@link Options}): the pattern's plan, unless the backend's
 *       cost model says that dense attention or the plan's block-expanded form (its visited key
 *       blocks as whole blocks, over contiguous tiles) runs faster, or that planning a
 *       data-dependent pattern alone would cost more than dense attention. A substitute admits every
 *       pair the plan admits and more (never fewer), all with weight 0, so AUTO replaces only plans
 *       without log-weights or unconditional keys and whose pairs all lie inside the call's causal
 *       mask. What ran is returned with the result and logged once at FINE.
 *   <li>{@link #SPARSE}: always the pattern's plan, exactly.
 *   <li>{@link #DENSE}: always dense attention (causal when the options are); the pattern is not
 *       planned.
 * </ul>
 */
public enum Dispatch {
    AUTO,
    SPARSE,
    DENSE;

    /**
     * The mode named {@code text} ({@code auto}, {@code sparse}, {@code dense}, any case).
     *
     * @throws IllegalArgumentException naming the modes when none matches
     */
    public static Dispatch parse(String text) {
        for (Dispatch d : values()) {
            if (d.name().equalsIgnoreCase(text == null ? "" : text.trim())) {
                return d;
            }
        }
        throw new IllegalArgumentException("dispatch: expected auto, sparse or dense, got '" + text + "'");
    }

    @Override
    public String toString() {
        return name().toLowerCase();
    }
}
