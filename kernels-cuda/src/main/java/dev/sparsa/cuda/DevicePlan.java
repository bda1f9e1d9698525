package dev.sparsa.cuda;

import dev.sparsa.plan.ElementPredicate;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * A {@link SparsePlan} uploaded to the device in the format {@code sparsa_plan.cuh} reads: an int pool
 * (32 ints of description per layout, then each layout's CSR arrays and, for layouts whose rows are
 * not covered exactly once, a row → partial-entry CSR for the LSE merge), a float pool (log-weights)
 * and work lists (8 ints per CTA) for each sub-tile height a kernel uses. Built once per plan and
 * cached by {@link CudaBackend}; freed by {@link #close()}.
 */
final class DevicePlan implements AutoCloseable {
    static final int LI_STRIDE = 32;

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
        IntPool ip = new IntPool();
        FloatPool fp = new FloatPool();
        ip.add(new int[LI_STRIDE * layouts.size()]);
        int[] layoutInfo = new int[LI_STRIDE * layouts.size()];
        for (int l = 0; l < layouts.size(); l++) {
            HeadLayout h = layouts.get(l);
            int[] li = new int[LI_STRIDE];
            li[0] = ip.add(h.rowStarts());
            li[1] = ip.add(h.rowCounts());
            li[2] = ip.add(h.rowListOffsets());
            li[3] = ip.add(h.rowList());
            li[4] = ip.add(h.fullOffsets());
            li[5] = ip.add(h.fullBlocks());
            li[6] = ip.add(h.partialOffsets());
            li[7] = ip.add(h.partialBlocks());
            li[8] = ip.add(h.gatherOffsets());
            li[9] = ip.add(h.gatherKeys());
            li[10] = ip.add(h.unconditionalOffsets());
            li[11] = ip.add(h.unconditionalKeys());
            li[12] = fp.add(h.gatherLogWeights());
            li[13] = fp.add(h.unconditionalLogWeights());
            ElementPredicate p = h.predicate();
            li[14] = p.causal() ? 1 : 0;
            li[15] = p.bandLo();
            li[16] = p.bandHi();
            li[17] = p.sinks();
            li[18] = p.strideModulus();
            li[19] = p.strideResidue();
            li[20] = p.strideOnKey() ? 1 : 0;
            li[21] = p.neighbourhood();
            li[22] = h.queryOffset();
            if (!h.coversEachRowOnce()) {
                int[][] csr = rowEntries(h);
                li[23] = ip.add(csr[0]);
                li[24] = ip.add(csr[1]);
            } else {
                li[23] = -1;
                li[24] = -1;
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
                merges.add(new int[] {s, l, Math.toIntExact(entries), 0});
                entries += entriesOf(h);
            }
        }
        if (entries > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("plan: " + entries + " partial rows to merge exceed the CUDA backend's limit of "
                    + Integer.MAX_VALUE);
        }
        this.scratchEntries = entries;
        this.mergeSlices = merges.size();
        int[] mw = new int[4 * merges.size()];
        for (int i = 0; i < merges.size(); i++) {
            System.arraycopy(merges.get(i), 0, mw, 4 * i, 4);
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

    private static long entriesOf(HeadLayout h) {
        long n = 0;
        for (int t = 0; t < h.tileCount(); t++) {
            n += h.rowCount(t);
        }
        return n;
    }

    /** Row → entries CSR: entry index {@code tilePrefix[t] + i} for row {@code i} of tile {@code t}. */
    private static int[][] rowEntries(HeadLayout h) {
        int nq = h.queryLength();
        int[] counts = new int[nq + 1];
        for (int t = 0; t < h.tileCount(); t++) {
            for (int i = 0; i < h.rowCount(t); i++) {
                counts[h.row(t, i) + 1]++;
            }
        }
        for (int r = 0; r < nq; r++) {
            counts[r + 1] += counts[r];
        }
        int[] fill = Arrays.copyOf(counts, nq);
        int[] entries = new int[counts[nq]];
        int e = 0;
        for (int t = 0; t < h.tileCount(); t++) {
            for (int i = 0; i < h.rowCount(t); i++, e++) {
                entries[fill[h.row(t, i)]++] = e;
            }
        }
        return new int[][] {counts, entries};
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
        // the most expensive tiles first, so that the last wave holds short ones (stable: deterministic)
        items.sort((a, b) -> Long.compare(b[0], a[0]));
        int[] w = new int[8 * items.size()];
        for (int i = 0; i < items.size(); i++) {
            long[] it = items.get(i);
            w[8 * i] = (int) it[1];
            w[8 * i + 1] = (int) it[2];
            w[8 * i + 2] = (int) it[3];
            w[8 * i + 3] = (int) it[4];
            w[8 * i + 4] = (int) it[5];
        }
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

    /** A growing int array; {@link #add} returns where the block starts. */
    private static final class IntPool {
        private int[] a = new int[1024];
        private int n;

        int add(int[] block) {
            int at = n;
            if (n + block.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, n + block.length));
            }
            System.arraycopy(block, 0, a, n, block.length);
            n += block.length;
            return at;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }

    private static final class FloatPool {
        private float[] a = new float[256];
        private int n;

        int add(float[] block) {
            int at = n;
            if (n + block.length > a.length) {
                a = Arrays.copyOf(a, Math.max(a.length * 2, n + block.length));
            }
            System.arraycopy(block, 0, a, n, block.length);
            n += block.length;
            return at;
        }

        float[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
