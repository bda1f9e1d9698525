package dev.sparsa.patterns.verticalslash;

/**
 * How a vertical-slash selection (columns {@code V}, diagonals {@code S} as offsets {@code o = p − k})
 * becomes a key set. {@code T} below is the plan's tile height; a tile's rows are {@code [r0, r0 +
 * count)} and {@code E = p(r0) + T} is where the tile would end if it were full.
 */
public enum VsSemantics {
    /**
     * Token-exact: row at position {@code p} admits the selected columns {@code k ∈ V} and the keys
     * {@code p − o} of the selected diagonals {@code o ∈ S}, under causality.
     */
    EXACT,
    /**
     * What MInference's kernel computes ({@code convert_vertical_slash_indexes} in {@code
     * csrc/vertical_slash_index.cu} and the Triton kernel of {@code
     * minference/ops/pit_sparse_flash_attention_v2.py}), with its block size 64 read as the tile
     * height {@code T}: each diagonal {@code o < E}, largest offset first, gives the key range
     * {@code [e − T, e)} with {@code e = max(E − o, T)}; a range ending more than {@code T} past the
     * current one starts a new one, a range ending past it (by at most {@code T}) extends the current
     * one by exactly {@code T}. The tile admits every key of the merged ranges, and the selected
     * columns that lie outside them and before the last range's end, all under causality. Neither a
     * superset nor a subset of {@link #EXACT}: the ranges are whole {@code T}-key runs off the key
     * grid, and columns past the last range are dropped. With the default 64×64 geometry and equal
     * query and key lengths it admits exactly MInference's pairs. A tile that no diagonal reaches
     * admits its visible columns.
     */
    BLOCK_EXPANDED,
    /**
     * Grid-aligned widening (an option of Sparsa's, not MInference's): every key block of the plan's
     * grid that a selected diagonal touches over the tile's rows (keys {@code [p(r0) − o, p(last) −
     * o]}), plus the selected columns outside those blocks, all under causality. A superset of {@link
     * #EXACT} that visits only whole grid blocks.
     */
    GRID_EXPANDED
}
