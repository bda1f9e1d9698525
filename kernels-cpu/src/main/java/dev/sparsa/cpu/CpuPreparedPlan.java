package dev.sparsa.cpu;

import dev.sparsa.backend.PreparedPlan;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.tensor.Device;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.Comparator;
import java.util.List;

/**
 * A plan in the CPU backend's form: its work items, largest first, and for each layout whose tiles
 * leave rows out, the rows they hold (the others are written as 0 and −∞). Computed once by {@link
 * CpuBackend#prepare} and shared by every later run; immutable, so concurrent runs may share it.
 */
final class CpuPreparedPlan extends PreparedPlan {
    private final List<WorkItem> items;
    /** Per layout: the rows its tiles hold, or null when every row is written by a work item. */
    private final BitSet[] covered;

    CpuPreparedPlan(SparsePlan plan, CpuBackend backend) {
        super(plan, backend, Device.CPU);
        this.items = List.copyOf(workItems(plan, backend.parallelism(), backend.math()));
        this.covered = coveredRows(plan);
    }

    /** The work items, largest first. */
    List<WorkItem> items() {
        return items;
    }

    /** The rows layout {@code layout}'s tiles hold, or null when nothing needs clearing. */
    BitSet coveredRows(int layout) {
        return covered[layout];
    }

    @Override
    public long preparedBytes() {
        long bytes = 48L * items.size();
        for (BitSet b : covered) {
            bytes += b == null ? 0 : b.size() / 8;
        }
        return bytes;
    }

    @Override
    protected void release() {
        // heap only: nothing to free
    }

    /** Runs of tiles per worker that a call is cut into (at least one tile per run). */
    static final int RUNS_PER_WORKER = 32;

    /**
     * The work of a call, largest first (by cost class). Query heads of one GQA group that share a
     * layout are stacked, so each K/V chunk is converted once for the whole group; consecutive tiles
     * of a slice are grouped into runs of about {@code 1/(RUNS_PER_WORKER · parallelism)} of the
     * call's visited pairs, so that a worker stays on one head's K/V for a while (on a sparse plan a
     * key block is visited by a few tiles of its head: close together in time it is still in
     * cache) and the per-item bookkeeping is paid once per run.
     */
    private static List<WorkItem> workItems(SparsePlan plan, int parallelism, TileMath math) {
        AttentionShape shape = plan.shape();
        List<WorkItem> items = new ArrayList<>();
        int group = shape.groupSize();
        long total = 0;
        for (int b = 0; b < shape.batch(); b++) {
            for (int h = 0; h < shape.qHeads(); h++) {
                HeadLayout lay = plan.layouts().get(plan.layoutIndex(b, h));
                for (int t = 0; t < lay.tileCount(); t++) {
                    total += tileCost(lay, t);
                }
            }
        }
        long target = Math.max(1, total / ((long) RUNS_PER_WORKER * Math.max(1, parallelism)));
        for (int b = 0; b < shape.batch(); b++) {
            for (int g = 0; g < shape.kvHeads(); g++) {
                int h0 = g * group;
                boolean shared = true;
                for (int h = h0 + 1; h < h0 + group; h++) {
                    shared &= plan.layoutIndex(b, h) == plan.layoutIndex(b, h0);
                }
                if (shared) {
                    addItems(plan, items, b, h0, group, target, math);
                } else {
                    for (int h = h0; h < h0 + group; h++) {
                        addItems(plan, items, b, h, 1, target, math);
                    }
                }
            }
        }
        // largest first, by powers of two of the cost: within a class the natural (batch, head, tile)
        // order stays, so workers sweep one head's K/V together instead of hopping between heads
        items.sort(Comparator.comparingInt((WorkItem w) -> 63 - Long.numberOfLeadingZeros(w.cost())).reversed());
        return items;
    }

    private static void addItems(SparsePlan plan, List<WorkItem> items, int b, int h0, int heads, long target,
                                 TileMath math) {
        int li = plan.layoutIndex(b, h0);
        HeadLayout lay = plan.layouts().get(li);
        if (lay.rowsDisjoint()) {
            int start = 0;
            long cost = 0;
            for (int t = 0; t < lay.tileCount(); t++) {
                cost += tileCost(lay, t) * heads;
                // runs of narrow tiles end at multiples of TileRunner.GROUP_TILES, so that the kernel's
                // groups of such tiles (and with them the bits) do not depend on the thread count
                boolean cut = !math.narrow(lay.rowCount(t) * heads) || (t + 1) % TileRunner.GROUP_TILES == 0;
                if (cost >= target && cut || t == lay.tileCount() - 1) {
                    items.add(new WorkItem(b, h0, heads, li, start, t + 1, cost));
                    start = t + 1;
                    cost = 0;
                }
            }
        } else {
            long cost = 0;
            for (int t = 0; t < lay.tileCount(); t++) {
                cost += tileCost(lay, t);
            }
            items.add(new WorkItem(b, h0, heads, li, WorkItem.ALL_TILES, 0, cost * heads));
        }
    }

    private static long tileCost(HeadLayout lay, int t) {
        long keys = 1;
        for (int i = lay.fullStart(t); i < lay.fullEnd(t); i++) {
            keys += lay.blockWidth(lay.fullBlock(i));
        }
        for (int i = lay.partialStart(t); i < lay.partialEnd(t); i++) {
            keys += lay.blockWidth(lay.partialBlock(i));
        }
        keys += lay.gatherEnd(t) - lay.gatherStart(t);
        keys += lay.unconditionalEnd(t) - lay.unconditionalStart(t);
        return keys * lay.rowCount(t);
    }

    private static BitSet[] coveredRows(SparsePlan plan) {
        BitSet[] covered = new BitSet[plan.layouts().size()];
        for (int li = 0; li < covered.length; li++) {
            HeadLayout lay = plan.layouts().get(li);
            if (lay.coversEachRowOnce() || !lay.rowsDisjoint()) {
                continue;
            }
            BitSet c = new BitSet(plan.shape().queryLength());
            for (int r = 0; r < plan.shape().queryLength(); r++) {
                if (lay.rowTiles().covers(r)) {
                    c.set(r);
                }
            }
            covered[li] = c;
        }
        return covered;
    }
}
