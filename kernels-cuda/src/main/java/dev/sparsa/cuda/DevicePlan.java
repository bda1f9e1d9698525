package dev.sparsa.cuda;

import static dev.sparsa.cuda.DevicePlanFormat.*;

import dev.sparsa.internal.FloatList;
import dev.sparsa.internal.IntList;
import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import java.util.ArrayList;
import java.util.List;

/**
 * A {@link SparsePlan} uploaded to the device in the format of {@link DevicePlanFormat} (the twin of
 * {@code sparsa_plan.cuh}): an int pool (a description per layout, then each layout's CSR arrays and,
 * for layouts whose rows are not covered exactly once, its row-to-entry index for the LSE merge), a
 * float pool (log-weights) and work lists for each sub-tile height a kernel uses. Built once per plan and
 * cached by {@link CudaBackend}; freed by {@link #close()}.
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
    private boolean closed;

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
            ElementPredicate p = h.predicate();
            li[LI_CAUSAL] = p.causal() ? 1 : 0;
            li[LI_BAND_LO] = p.bandLo();
            li[LI_BAND_HI] = p.bandHi();
            li[LI_SINKS] = p.sinks();
            li[LI_STRIDE_M] = p.strideModulus();
            li[LI_STRIDE_R] = p.strideResidue();
            li[LI_STRIDE_ON_KEY] = p.strideOnKey() ? 1 : 0;
            li[LI_NEIGHBOURHOOD] = p.neighbourhood();
            li[LI_QUERY_OFFSET] = h.queryOffset();
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
        sliceEntryBase = new long[slices];
        long entries = 0;
        List<int[]> merges = new ArrayList<>();
        for (int s = 0; s < slices; s++) {
            int l = plan.layoutIndex(s / plan.shape().qHeads(), s % plan.shape().qHeads());
            HeadLayout h = layouts.get(l);
            if (h.coversEachRowOnce()) {
                sliceEntryBase[s] = -1;
            } else {
                sliceEntryBase[s] = entries;
                int[] m = new int[M_STRIDE];
                m[M_SLICE] = s;
                m[M_LAYOUT] = l;
                m[M_SCRATCH_BASE] = Math.toIntExact(entries);
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
        this.device = device;
        this.ints = ints;
        this.floats = floats;
        this.sliceEntryBase = new long[0];
        this.scratchEntries = 0;
        this.mergeSlices = 0;
        this.workLists.addAll(workLists);
        DeviceBuffer m0;
        try {
            m0 = new DeviceBuffer(device, 4L * M_STRIDE);
        } catch (RuntimeException e) {
            close(ints, floats, workLists);
            throw e;
        }
        this.mergeWork = m0;
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
     * Work items {@code {cost, slice, layout, tile, rowBegin, entryBase}} in the device format ({@code W_*}
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
        }
        return w;
    }

    private WorkList buildWorkList(SparsePlan plan, int rows) {
        List<HeadLayout> layouts = plan.layouts();
        int qh = plan.shape().qHeads();
        int cpb = (plan.geometry().blockCols() + 63) / 64;
        List<long[]> items = new ArrayList<>();
        for (int s = 0; s < sliceEntryBase.length; s++) {
            int l = plan.layoutIndex(s / qh, s % qh);
            HeadLayout h = layouts.get(l);
            long prefix = 0;
            for (int t = 0; t < h.tileCount(); t++) {
                long chunks = (long) (h.fullEnd(t) - h.fullStart(t) + h.partialEnd(t) - h.partialStart(t)) * cpb
                        + (h.gatherEnd(t) - h.gatherStart(t) + 63) / 64
                        + (h.unconditionalEnd(t) - h.unconditionalStart(t) + 63) / 64;
                for (int r = 0; r < h.rowCount(t); r += rows) {
                    long entry = sliceEntryBase[s] < 0 ? -1 : sliceEntryBase[s] + prefix + r;
                    items.add(new long[] {chunks, s, l, t, r, entry});
                }
                prefix += h.rowCount(t);
            }
        }
        int[] w = packWork(items);
        DeviceBuffer buf = new DeviceBuffer(device, 4L * w.length);
        buf.copyFrom(w);
        return new WorkList(rows, buf, items.size());
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
        return b;
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
            for (WorkList w : workLists) {
                w.buffer().close();
            }
            workLists.clear();
        }
    }
}
