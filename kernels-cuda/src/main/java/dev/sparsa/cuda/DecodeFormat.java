package dev.sparsa.cuda;

import java.util.List;

/**
 * The decode kernels' metadata format, by name: the Java twin of the enums and the {@code
 * DecodeScalars} struct in {@code src/main/cuda/sparsa_decode.cuh}. {@link CudaDecode} writes work
 * items, merge tiles and scalars with these indices only, and {@code DecodeFormatTest} parses the
 * header and fails when a name or a value here differs from it.
 *
 * <ul>
 *   <li><b>Work items</b> ({@code DI_*}): {@value #DI_STRIDE} ints per CTA of {@code
 *       sparsa_decode_*}: the sequence and KV head, the first (query head, row) pair and the pair
 *       count, the chunk of visited keys {@code [v0, v1)}, the span cursor where the chunk starts
 *       (sparse decode), the first scratch entry (−1: the rows are written directly) and the merge tile
 *       the item's partial belongs to (−1 with no scratch; read only by the opt-in merge inside the
 *       decode kernel, where the item that finishes its tile's chunks last merges them).
 *   <li><b>Merge tiles</b> ({@code DM_*}): {@value #DM_STRIDE} ints per CTA of {@code
 *       sparsa_decode_merge} (and per tile of the merge inside the decode kernel): the sequence, KV
 *       head, pairs, the chunk count and the first scratch entry.
 *   <li><b>Scalars</b>: strides, sizes, the offsets of the metadata's sections and the scales as
 *       8-byte fields, in {@link #SCALARS} order; the output kind as {@link DevicePlanFormat#outKind}.
 * </ul>
 */
final class DecodeFormat {
    private DecodeFormat() {
    }

    static final int DI_B = 0;
    static final int DI_G = 1;
    static final int DI_PAIR0 = 2;
    static final int DI_PAIRS = 3;
    static final int DI_V0 = 4;
    static final int DI_V1 = 5;
    static final int DI_SPAN = 6;
    static final int DI_SPAN_OFF = 7;
    static final int DI_SCRATCH = 8;
    static final int DI_MERGE = 9;
    /** Ints per work item. */
    static final int DI_STRIDE = 10;

    static final int DM_B = 0;
    static final int DM_G = 1;
    static final int DM_PAIR0 = 2;
    static final int DM_PAIRS = 3;
    static final int DM_CHUNKS = 4;
    static final int DM_SCRATCH = 5;
    /** Ints per merge tile. */
    static final int DM_STRIDE = 6;

    /** The fields of {@code struct DecodeScalars}, in order; each 8 bytes (long, or a double's raw bits). */
    static final List<String> SCALARS = List.of("qsb", "qsh", "qss", "ksb", "ksh", "kss", "vsb", "vsh", "vss",
            "osb", "osh", "oss", "lsb", "lsh", "lss", "group", "rows", "outKind", "paged", "pageShift", "tableWidth",
            "sparse", "kvHeads", "batch", "oTables", "oSpanOffsets", "oSpanStarts", "oSpanEnds", "oSpanDelta", "oItems",
            "oMerges", "oLists", "listWidth", "scale", "softCap");

    /** Index of a scalar field in {@link #SCALARS}. */
    static int scalar(String name) {
        int i = SCALARS.indexOf(name);
        if (i < 0) {
            throw new IllegalArgumentException("name: no decode scalar field '" + name + "' in " + SCALARS);
        }
        return i;
    }
}
