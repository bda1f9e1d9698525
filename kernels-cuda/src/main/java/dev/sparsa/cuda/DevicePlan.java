package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;

import dev.sparsa.internal.FloatList;
import dev.sparsa.internal.IntList;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link SparsePlan} uploaded to the device in the format of {@link DevicePlanFormat} (the twin of
 * {@code sparsa_plan.cuh}): an int pool (a description per layout, then each layout's CSR arrays and,
 * for layouts whose rows are not covered exactly once, its row-to-entry index for the LSE merge), a
 * float pool (log-weights) and work lists for each sub-tile height a kernel uses, plus a work list of
 * 64-row CTAs for the gather kernel ({@link #packedWorkList()}): head-packed, for plans whose
 * consecutive query heads of a GQA group share a layout of short tiles (per-row token lists), or the
 * plain 64-row list for plans whose tiles hold {@value #FEW_ROWS} rows or fewer on average (per-head
 * per-row lists, which the gather kernel runs with every warp on a share of each row's keys instead
 * of one row in a 128-row tile). Built once per plan and cached by {@link CudaBackend}; freed by
 * {@link #close()}.
 */
final class DevicePlan implements AutoCloseable {
    private final CudaDevice device;
    private final DeviceBuffer ints;
    private final DeviceBuffer floats;
    private final long[] sliceEntryBase;   // scratch base of each slice, -1 when the slice writes directly
    private final long scratchEntries;
    private final DeviceBuffer mergeWork;
    private final int mergeSlices;
    private final List<WorkList> workLists = new ArrayList<>();
    private WorkList packed;
    private boolean closed;

    /** Rows per CTA of the head-packed work list (the mma.sync kernel's 64-row CTA). */
    static final int PACKED_ROWS = 64;

    /**
     * Mean rows per tile at or under which an unpacked plan also gets a 64-row list for the gather
     * kernel: one warp's m-tile, so that at least three of its four warps would otherwise idle.
     */
    static final int FEW_ROWS = 16;

    /** A work list for kernels that take {@code rows} query rows per CTA. */
    record WorkList(int rows, DeviceBuffer buffer, int items) {
    }

    /**
     * Uploads {@code plan} with work lists for CTAs of each of {@code rowsPerCta} query rows. Keeps no
     * reference to the plan, so that a cache may hold this weakly keyed by it.
     */
    DevicePlan(CudaDevice device, SparsePlan plan, int... rowsPerCta) {
        this.device = device;
        List<HeadLayout> layouts = plan.layouts();
        IntList ip = new IntList();
        FloatList fp = new FloatList();
        ip.append(new int[LI_STRIDE * layouts.size()]);
        int[] layoutInfo = new int[LI_STRIDE * layouts.size()];
        for (int l = 0; l < layouts.size(); l++) {
            HeadLayout h = layouts.get(l);
            int[] li = new int[LI_STRIDE];
            li[LI_ROW_START] = ip.append(h.rowStarts());
            li[LI_ROW_COUNT] = ip.append(h.rowCounts());
            li[LI_ROW_LIST_OFFSET] = ip.append(h.rowListOffsets());
            li[LI_ROW_LIST] = ip.append(h.rowList());
            li[LI_FULL_OFFSETS] = ip.append(h.fullOffsets());
            li[LI_FULL_BLOCKS] = ip.append(h.fullBlocks());
            li[LI_PARTIAL_OFFSETS] = ip.append(h.partialOffsets());
            li[LI_PARTIAL_BLOCKS] = ip.append(h.partialBlocks());
            li[LI_GATHER_OFFSETS] = ip.append(h.gatherOffsets());
            li[LI_GATHER_KEYS] = ip.append(h.gatherKeys());
            li[LI_UNCOND_OFFSETS] = ip.append(h.unconditionalOffsets());
            li[LI_UNCOND_KEYS] = ip.append(h.unconditionalKeys());
            li[LI_GATHER_LW] = fp.append(h.gatherLogWeights());
            li[LI_UNCOND_LW] = fp.append(h.unconditionalLogWeights());
            writePredicate(li, 0, h.predicate(), h.queryOffset());
            if (!h.coversEachRowOnce()) {
                li[LI_ROW_ENTRY_OFFSETS] = ip.append(h.rowTiles().offsets());
                li[LI_ROW_ENTRIES] = ip.append(h.rowTiles().entries());
            } else {
                li[LI_ROW_ENTRY_OFFSETS] = -1;
                li[LI_ROW_ENTRIES] = -1;
            }
            System.arraycopy(li, 0, layoutInfo, l * LI_STRIDE, LI_STRIDE);
        }
        int[] intPool = ip.toArray();
        System.arraycopy(layoutInfo, 0, intPool, 0, layoutInfo.length);
        float[] floatPool = fp.toArray();

        int slices = plan.shape().slices();
        sliceEntryBase = entryBases(plan);
        long entries = 0;
        List<int[]> merges = new ArrayList<>();
        for (int s = 0; s < slices; s++) {
            int l = plan.layoutIndex(s / plan.shape().qHeads(), s % plan.shape().qHeads());
            HeadLayout h = layouts.get(l);
            if (!h.coversEachRowOnce()) {
                int[] m = new int[M_STRIDE];
                m[M_SLICE] = s;
                m[M_LAYOUT] = l;
                m[M_SCRATCH_BASE] = Math.toIntExact(sliceEntryBase[s]);
                merges.add(m);
                entries += entriesOf(h);
            }
        }
        if (entries > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("plan: " + entries + " partial rows to merge exceed the CUDA backend's limit of "
                    + Integer.MAX_VALUE);
        }
        this.scratchEntries = entries;
        this.mergeSlices = merges.size();
        int[] mw = new int[M_STRIDE * merges.size()];
        for (int i = 0; i < merges.size(); i++) {
            System.arraycopy(merges.get(i), 0, mw, M_STRIDE * i, M_STRIDE);
        }
        DeviceBuffer i0 = null;
        DeviceBuffer f0 = null;
        DeviceBuffer m0 = null;
        try {
            i0 = new DeviceBuffer(device, 4L * intPool.length);
            i0.copyFrom(intPool);
            f0 = new DeviceBuffer(device, 4L * floatPool.length);
            f0.copyFrom(floatPool);
            m0 = new DeviceBuffer(device, 4L * mw.length);
            m0.copyFrom(mw);
        } catch (RuntimeException e) {
            for (DeviceBuffer b : new DeviceBuffer[] {i0, f0, m0}) {
                if (b != null) {
                    b.close();
                }
            }
            throw e;
        }
        this.ints = i0;
        this.floats = f0;
        this.mergeWork = m0;
        try {
            for (int rows : rowsPerCta) {
                if (workLists.stream().noneMatch(w -> w.rows() == rows)) {
                    workLists.add(buildWorkList(plan, rows));
                }
            }
            List<long[]> packedItems = workItems(plan, sliceEntryBase, PACKED_ROWS, true);
            // worth a list of its own when it saves at least a quarter of the 64-row CTAs
            if (packedItems != null && 4L * packedItems.size() <= 3L * unpackedItems(plan, PACKED_ROWS)) {
                packed = upload(device, PACKED_ROWS, packWork(packedItems));
            } else if (fewRowsPerTile(plan)) {
                // the plain 64-row list: the one already uploaded for the mma.sync kernel where there is one
                WorkList plain = workLists.stream().filter(w -> w.rows() == PACKED_ROWS).findFirst().orElse(null);
                packed = plain != null ? plain : upload(device, PACKED_ROWS, packWork(workItems(plan, sliceEntryBase, PACKED_ROWS, false)));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /**
     * A plan whose pools another party fills on the device ({@link CudaEstimatedPlan}): it takes
     * ownership of {@code ints}, {@code floats} and the work lists; every row is written directly
     * (no LSE merge).
     */
    DevicePlan(CudaDevice device, DeviceBuffer ints, DeviceBuffer floats, List<WorkList> workLists) {
        this(device, ints, floats, workLists, null);
    }

    /**
     * As {@link #DevicePlan(CudaDevice, DeviceBuffer, DeviceBuffer, List)}, with {@code gather} (owned
     * too, null for none) as the 64-row list for the gather kernel ({@link #packedWorkList()}).
     */
    DevicePlan(CudaDevice device, DeviceBuffer ints, DeviceBuffer floats, List<WorkList> workLists, WorkList gather) {
        this.device = device;
        this.ints = ints;
        this.floats = floats;
        this.sliceEntryBase = new long[0];
        this.scratchEntries = 0;
        this.mergeSlices = 0;
        this.workLists.addAll(workLists);
        this.packed = gather;
        DeviceBuffer m0;
        try {
            m0 = new DeviceBuffer(device, 4L * M_STRIDE);
        } catch (RuntimeException e) {
            close(ints, floats, workLists);
            if (gather != null) {
                gather.buffer().close();
            }
            throw e;
        }
        this.mergeWork = m0;
    }

    /**
     * Whether the plan's tiles hold {@value #FEW_ROWS} query rows or fewer on average, counted over its
     * slices (each slice's layout's non-empty tiles): per-row lists, for which 64-row CTAs on the
     * gather kernel beat one row in a 128-row tile. False for plans of at most {@value #FEW_ROWS} query
     * rows, whose tiles are short in any tiling: they keep the kernel of their geometry, as the plans
     * whose selection is estimated on the device do, so that both roads give the same bits.
     */
    static boolean fewRowsPerTile(SparsePlan plan) {
        if (plan.shape().queryLength() <= FEW_ROWS) {
            return false;
        }
        List<HeadLayout> layouts = plan.layouts();
        long[] uses = new long[layouts.size()];
        for (int s = 0; s < plan.shape().slices(); s++) {
            uses[plan.layoutIndex(s / plan.shape().qHeads(), s % plan.shape().qHeads())]++;
        }
        long rows = 0;
        long tiles = 0;
        for (int l = 0; l < uses.length; l++) {
            if (uses[l] == 0) {
                continue;
            }
            HeadLayout h = layouts.get(l);
            for (int t = 0; t < h.tileCount(); t++) {
                int n = h.rowCount(t);
                if (n > 0) {
                    rows += uses[l] * n;
                    tiles += uses[l];
                }
            }
        }
        return tiles > 0 && rows <= (long) FEW_ROWS * tiles;
    }

    private static void close(DeviceBuffer ints, DeviceBuffer floats, List<WorkList> lists) {
        ints.close();
        floats.close();
        for (WorkList w : lists) {
            w.buffer().close();
        }
    }

    /** Uploads work items ({@link DevicePlanFormat#W_STRIDE} ints each) as the work list for {@code rows}. */
    static WorkList upload(CudaDevice device, int rows, int[] items) {
        DeviceBuffer buf = new DeviceBuffer(device, 4L * items.length);
        try {
            buf.copyFrom(items);
        } catch (RuntimeException e) {
            buf.close();
            throw e;
        }
        return new WorkList(rows, buf, items.length / W_STRIDE);
    }

    /**
     * Each slice's first scratch entry in slice order (each takes one entry per tile row of its layout),
     * −1 for slices whose layout covers each row once (written directly).
     */
    static long[] entryBases(SparsePlan plan) {
        long[] base = new long[plan.shape().slices()];
        long entries = 0;
        for (int s = 0; s < base.length; s++) {
            HeadLayout h = plan.layouts().get(plan.layoutIndex(s / plan.shape().qHeads(), s % plan.shape().qHeads()));
            if (h.coversEachRowOnce()) {
                base[s] = -1;
            } else {
                base[s] = entries;
                entries += entriesOf(h);
            }
        }
        return base;
    }

    private static long entriesOf(HeadLayout h) {
        long n = 0;
        for (int t = 0; t < h.tileCount(); t++) {
            n += h.rowCount(t);
        }
        return n;
    }

    /** The work list for CTAs of {@code rows} query rows. */
    synchronized WorkList workList(int rows) {
        ensureOpen();
        for (WorkList w : workLists) {
            if (w.rows() == rows) {
                return w;
            }
        }
        throw new IllegalStateException("device plan: no work list for " + rows + " rows per CTA");
    }

    /**
     * The work items of {@code plan} for CTAs of {@code rows} query rows, each {@code {cost, slice,
     * layout, tile, rowBegin, entryBase, packHeads, packRows, packEntryStride}} (cost: the tile's key
     * chunks). Without {@code packHeads}: one item per (slice, tile, {@code rows} rows of the tile). With
     * it: every run of consecutive query heads of one GQA group that map to the same layout, where no
     * row of that layout is in two tiles, is stacked: a tile of {@code count <= rows / 2} rows gives
     * items of up to {@code rows / count} heads each ({@code packHeads} heads from the slice's on,
     * {@code packRows = count}; for layouts whose rows go through the LSE merge, stacked head {@code j}'s
     * entries start {@code j · packEntryStride} after the item's); other tiles and heads keep one item
     * per head. Returns null when packing stacks no two heads (the plan
     * keeps the unpacked list).
     *
     * @param sliceEntryBase each slice's first scratch entry, −1 where its rows are written directly
     */
    static List<long[]> workItems(SparsePlan plan, long[] sliceEntryBase, int rows, boolean packHeads) {
        List<HeadLayout> layouts = plan.layouts();
        int qh = plan.shape().qHeads();
        int group = plan.shape().groupSize();
        int cpb = (plan.geometry().blockCols() + 63) / 64;
        List<long[]> items = new ArrayList<>();
        boolean stacked = false;
        for (int s = 0; s < sliceEntryBase.length; ) {
            int b = s / qh;
            int h = s % qh;
            int l = plan.layoutIndex(b, h);
            HeadLayout lay = layouts.get(l);
            int run = 1;
            if (packHeads && lay.rowsDisjoint()) {
                while (h + run < qh && (h + run) / group == h / group && plan.layoutIndex(b, h + run) == l) {
                    run++;
                }
            }
            long prefix = 0; // rows of the tiles before t: the scratch offset of tile t's rows in the slice
            for (int t = 0; t < lay.tileCount(); t++) {
                long chunks = (long) (lay.fullEnd(t) - lay.fullStart(t) + lay.partialEnd(t) - lay.partialStart(t)) * cpb
                        + (lay.gatherEnd(t) - lay.gatherStart(t) + 63) / 64
                        + (lay.unconditionalEnd(t) - lay.unconditionalStart(t) + 63) / 64;
                int count = lay.rowCount(t);
                if (run > 1 && count > 0 && count <= rows / 2) {
                    int per = rows / count;
                    for (int j = 0; j < run; j += per) {
                        int n = Math.min(per, run - j);
                        long base = sliceEntryBase[s + j];
                        // the run's slices are consecutive with one layout: their scratch bases lie
                        // entriesOf(lay) apart
                        items.add(new long[] {chunks, s + j, l, t, 0, base < 0 ? -1 : base + prefix, n, count,
                                base < 0 ? 0 : entriesOf(lay)});
                        stacked |= n > 1;
                    }
                } else {
                    for (int j = 0; j < run; j++) {
                        for (int r = 0; r < count; r += rows) {
                            long base = sliceEntryBase[s + j];
                            items.add(new long[] {chunks, s + j, l, t, r, base < 0 ? -1 : base + prefix + r, 0, 0, 0});
                        }
                    }
                }
                prefix += count;
            }
            s += run;
        }
        return packHeads && !stacked ? null : items;
    }

    /** How many items the unpacked work list for CTAs of {@code rows} rows holds. */
    static long unpackedItems(SparsePlan plan, int rows) {
        long[] perLayout = new long[plan.layouts().size()];
        for (int l = 0; l < perLayout.length; l++) {
            HeadLayout h = plan.layouts().get(l);
            for (int t = 0; t < h.tileCount(); t++) {
                perLayout[l] += (h.rowCount(t) + rows - 1) / rows;
            }
        }
        long n = 0;
        int qh = plan.shape().qHeads();
        for (int s = 0; s < plan.shape().slices(); s++) {
            n += perLayout[plan.layoutIndex(s / qh, s % qh)];
        }
        return n;
    }

    /**
     * Work items {@code {cost, slice, layout, tile, rowBegin, entryBase[, packHeads, packRows,
     * packEntryStride]}} in the device format ({@code W_*}
     * ints each), the most expensive first, so that the last wave holds short ones (a stable sort: the
     * order is deterministic).
     */
    static int[] packWork(List<long[]> items) {
        items.sort((a, b) -> Long.compare(b[0], a[0]));
        int[] w = new int[W_STRIDE * items.size()];
        for (int i = 0; i < items.size(); i++) {
            long[] it = items.get(i);
            int at = W_STRIDE * i;
            w[at + W_SLICE] = (int) it[1];
            w[at + W_LAYOUT] = (int) it[2];
            w[at + W_TILE] = (int) it[3];
            w[at + W_ROW_BEGIN] = (int) it[4];
            w[at + W_ENTRY_BASE] = (int) it[5];
            if (it.length > 8) {
                w[at + W_PACK_HEADS] = (int) it[6];
                w[at + W_PACK_ROWS] = (int) it[7];
                w[at + W_PACK_ENTRY_STRIDE] = Math.toIntExact(it[8]);
            }
        }
        return w;
    }

    private WorkList buildWorkList(SparsePlan plan, int rows) {
        return upload(device, rows, packWork(workItems(plan, sliceEntryBase, rows, false)));
    }

    /**
     * The work list for the gather kernel ({@link #PACKED_ROWS} rows per CTA: head-packed, or the plain
     * list of a plan of short tiles), or null when the plan has none.
     */
    synchronized WorkList packedWorkList() {
        ensureOpen();
        return packed;
    }

    DeviceBuffer ints() {
        ensureOpen();
        return ints;
    }

    DeviceBuffer floats() {
        ensureOpen();
        return floats;
    }

    DeviceBuffer mergeWork() {
        ensureOpen();
        return mergeWork;
    }

    /** Number of slices whose rows go through the LSE merge. */
    int mergeSlices() {
        return mergeSlices;
    }

    /** Scratch rows (partials) the merge needs. */
    long scratchEntries() {
        return scratchEntries;
    }

    /** Bytes this plan occupies on the device. */
    synchronized long deviceBytes() {
        long b = ints.bytes() + floats.bytes() + mergeWork.bytes();
        for (WorkList w : workLists) {
            b += w.buffer().bytes();
        }
        return packed == null || sharesPacked() ? b : b + packed.buffer().bytes();
    }

    /** Whether the gather kernel's list is one of the work lists (the same buffer, counted and closed once). */
    private boolean sharesPacked() {
        return packed != null && workLists.stream().anyMatch(w -> w == packed);
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("device plan: already closed");
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            ints.close();
            floats.close();
            mergeWork.close();
            boolean shared = sharesPacked();
            for (WorkList w : workLists) {
                w.buffer().close();
            }
            workLists.clear();
            if (packed != null && !shared) {
                packed.buffer().close();
            }
            packed = null;
        }
    }
}
