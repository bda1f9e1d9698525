package dev.sparsa.cuda;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Tensor;
import java.util.List;

/**
 * The device plan's wire format, by name: the Java twin of {@code src/main/cuda/sparsa_plan.cuh}.
 * {@link DevicePlan} writes and {@link CudaBackend} launches with these indices only, and {@code
 * DevicePlanFormatTest} parses the header and fails when a name or a value here differs from the
 * header's enums or the order of its {@code Scalars} struct.
 *
 * <ul>
 *   <li><b>Layout info</b> ({@code LI_*}): {@value #LI_STRIDE} ints per layout at the start of the
 *       int pool; offsets into the pools of the layout's CSR arrays, then its element predicate and
 *       query offset, then (for layouts whose rows are not covered exactly once) the row-to-entry
 *       index of {@link dev.sparsa.plan.RowTiles}, else −1.
 *   <li><b>Work items</b> ({@code W_*}): {@value #W_STRIDE} ints per CTA; entry base −1 means the
 *       rows are written directly, otherwise as f32 partials to scratch entries for the LSE merge. A
 *       head-packed item ({@code W_PACK_HEADS} &gt; 1, the mma.sync kernel only) stacks that many
 *       consecutive query heads of one GQA group sharing the layout: CTA row {@code i} is head
 *       {@code slice's head + i / W_PACK_ROWS}, tile row {@code rowBegin + i % W_PACK_ROWS} (scratch
 *       entry {@code entryBase + (i / W_PACK_ROWS) · W_PACK_ENTRY_STRIDE + i % W_PACK_ROWS}).
 *   <li><b>Merge items</b> ({@code M_*}): {@value #M_STRIDE} ints per merged slice.
 *   <li><b>Scalars</b>: the call's strides, sizes and scales as 8-byte fields, in {@link #SCALARS} order.
 * </ul>
 */
final class DevicePlanFormat {
    private DevicePlanFormat() {
    }

    static final int LI_ROW_START = 0;
    static final int LI_ROW_COUNT = 1;
    static final int LI_ROW_LIST_OFFSET = 2;
    static final int LI_ROW_LIST = 3;
    static final int LI_FULL_OFFSETS = 4;
    static final int LI_FULL_BLOCKS = 5;
    static final int LI_PARTIAL_OFFSETS = 6;
    static final int LI_PARTIAL_BLOCKS = 7;
    static final int LI_GATHER_OFFSETS = 8;
    static final int LI_GATHER_KEYS = 9;
    static final int LI_UNCOND_OFFSETS = 10;
    static final int LI_UNCOND_KEYS = 11;
    static final int LI_GATHER_LW = 12;
    static final int LI_UNCOND_LW = 13;
    static final int LI_CAUSAL = 14;
    static final int LI_BAND_LO = 15;
    static final int LI_BAND_HI = 16;
    static final int LI_SINKS = 17;
    static final int LI_STRIDE_M = 18;
    static final int LI_STRIDE_R = 19;
    static final int LI_STRIDE_ON_KEY = 20;
    static final int LI_NEIGHBOURHOOD = 21;
    static final int LI_QUERY_OFFSET = 22;
    static final int LI_ROW_ENTRY_OFFSETS = 23;
    static final int LI_ROW_ENTRIES = 24;
    /** Ints per layout description. */
    static final int LI_STRIDE = 32;

    static final int W_SLICE = 0;
    static final int W_LAYOUT = 1;
    static final int W_TILE = 2;
    static final int W_ROW_BEGIN = 3;
    static final int W_ENTRY_BASE = 4;
    /** Query heads a head-packed item stacks (0 or 1: one head). */
    static final int W_PACK_HEADS = 5;
    /** Tile rows per stacked head of a head-packed item. */
    static final int W_PACK_ROWS = 6;
    /** Scratch entries between the first rows of two stacked heads (items whose rows are merged). */
    static final int W_PACK_ENTRY_STRIDE = 7;
    /** Ints per work item. */
    static final int W_STRIDE = 8;

    /** Merge item: the slice, its layout, its first scratch entry (the kernel reads {@code MW[0..2]}). */
    static final int M_SLICE = 0;
    static final int M_LAYOUT = 1;
    static final int M_SCRATCH_BASE = 2;
    /** Ints per merge item. */
    static final int M_STRIDE = 4;

    static final int OUT_F32 = 0;
    static final int OUT_F16 = 1;
    static final int OUT_BF16 = 2;

    /** The fields of {@code struct Scalars}, in order; each 8 bytes (long, or a double's raw bits). */
    static final List<String> SCALARS = List.of("qsb", "qsh", "qss", "ksb", "ksh", "kss", "vsb", "vsh", "vss",
            "osb", "osh", "oss", "lsb", "lsh", "lss", "qHeads", "group", "queryLength", "keyLength", "blockCols",
            "outKind", "valueDim", "scale", "softCap");

    /** Index of a scalar field in {@link #SCALARS}. */
    static int scalar(String name) {
        int i = SCALARS.indexOf(name);
        if (i < 0) {
            throw new IllegalArgumentException("name: no scalar field '" + name + "' in " + SCALARS);
        }
        return i;
    }

    /** The output kind of a dtype. */
    static int outKind(DType t) {
        return switch (t) {
            case F32 -> OUT_F32;
            case F16 -> OUT_F16;
            case BF16 -> OUT_BF16;
            case E4M3 -> throw new IllegalArgumentException("out: the CUDA kernels write f32, f16 or bf16, not e4m3");
        };
    }

    /** The scalars of one call, in {@link #SCALARS} order ({@code lse} may be null). */
    static long[] scalars(Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, AttentionShape s, int blockCols,
                          double scale, double softCap) {
        long[] a = new long[SCALARS.size()];
        Tensor[] strided = {q, k, v, out, lse};
        String[] names = {"q", "k", "v", "o", "l"};
        String[] axes = {"sb", "sh", "ss"}; // batch, head, sequence (the dim stride is 1)
        for (int t = 0; t < strided.length; t++) {
            for (int axis = 0; axis < 3; axis++) {
                a[scalar(names[t] + axes[axis])] = strided[t] == null ? 0 : strided[t].stride(axis);
            }
        }
        a[scalar("qHeads")] = s.qHeads();
        a[scalar("group")] = s.groupSize();
        a[scalar("queryLength")] = s.queryLength();
        a[scalar("keyLength")] = s.keyLength();
        a[scalar("blockCols")] = blockCols;
        a[scalar("outKind")] = outKind(out.dtype());
        a[scalar("valueDim")] = s.valueDim();
        a[scalar("scale")] = Double.doubleToRawLongBits(scale);
        a[scalar("softCap")] = Double.doubleToRawLongBits(softCap);
        return a;
    }

    /**
     * Writes element predicate {@code p} and the layout's {@code queryOffset} into the layout
     * description at {@code info[at ..]}: {@code LI_CAUSAL} through {@code LI_QUERY_OFFSET}.
     */
    static void writePredicate(int[] info, int at, ElementPredicate p, int queryOffset) {
        info[at + LI_CAUSAL] = p.causal() ? 1 : 0;
        info[at + LI_BAND_LO] = p.bandLo();
        info[at + LI_BAND_HI] = p.bandHi();
        info[at + LI_SINKS] = p.sinks();
        info[at + LI_STRIDE_M] = p.strideModulus();
        info[at + LI_STRIDE_R] = p.strideResidue();
        info[at + LI_STRIDE_ON_KEY] = p.strideOnKey() ? 1 : 0;
        info[at + LI_NEIGHBOURHOOD] = p.neighbourhood();
        info[at + LI_QUERY_OFFSET] = queryOffset;
    }
}
