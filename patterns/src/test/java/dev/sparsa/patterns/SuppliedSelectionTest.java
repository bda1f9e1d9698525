package dev.sparsa.patterns;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.IndexTensor;
import dev.sparsa.testing.HostBackedDeviceMemory;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Caller-supplied selections: token sets equal the lists, heads map as declared, bad entries are named. */
class SuppliedSelectionTest {

    /** Random lists of {@code width} entries per (batch, head, row): any order, repeats, −1 padding, future keys. */
    private static int[] randomLists(SplittableRandom rnd, int batch, int heads, int rows, int width, int limit) {
        int[] data = new int[batch * heads * rows * width];
        for (int i = 0; i < data.length; i++) {
            data[i] = rnd.nextInt(8) == 0 ? -1 : rnd.nextInt(limit);
        }
        return data;
    }

    private static boolean listed(int[] data, int heads, int rows, int width, int b, int h, int r, int value, int len) {
        int base = ((b * heads + h) * rows + r) * width;
        for (int i = 0; i < len; i++) {
            if (data[base + i] == value) {
                return true;
            }
        }
        return false;
    }

    @Test
    void tokenListsAdmitExactlyTheirVisibleKeys() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (PlanContext ctx : Definitions.sweep()) {
            var s = ctx.shape();
            for (int heads : new int[] {1, s.kvHeads(), s.qHeads()}) {
                int width = 1 + rnd.nextInt(12);
                int[] data = randomLists(rnd, s.batch(), heads, ctx.queryLength(), width, ctx.keyLength());
                int[] lens = new int[s.batch() * heads * ctx.queryLength()];
                for (int i = 0; i < lens.length; i++) {
                    lens[i] = rnd.nextInt(width + 1);
                }
                IndexTensor idx = IndexTensor.of(data, s.batch(), heads, ctx.queryLength(), width);
                IndexTensor len = IndexTensor.of(lens, s.batch(), heads, ctx.queryLength(), 1);
                for (boolean withLengths : new boolean[] {false, true}) {
                    Pattern p = withLengths ? Patterns.tokenIndices(idx, len) : Patterns.tokenIndices(idx);
                    SparsePlan plan = p.plan(ctx);
                    Definitions.assertTokenSet(plan, (b, h, r, k) -> {
                        int sh = heads == 1 ? 0 : heads == s.qHeads() ? h : s.kvHeadOf(h);
                        int n = withLengths ? lens[(b * heads + sh) * ctx.queryLength() + r] : width;
                        return Definitions.causalOk(ctx, r, k) && listed(data, heads, ctx.queryLength(), width, b, sh, r, k, n);
                    }, p.name());
                    assertSharing(plan, heads);
                }
            }
        }
    }

    /** Query heads reading one selection share one layout (so the kernels stack them into one tile). */
    private static void assertSharing(SparsePlan plan, int selHeads) {
        var s = plan.shape();
        for (int b = 0; b < s.batch(); b++) {
            for (int h = 0; h < s.qHeads(); h++) {
                int same = selHeads == 1 ? 0 : selHeads == s.qHeads() ? h : s.kvHeadOf(h) * s.groupSize();
                assertEquals(plan.layoutIndex(b, same), plan.layoutIndex(b, h), "head " + h);
            }
        }
    }

    @Test
    void rowBlockListsAdmitTheirBlocksUpToTheDiagonal() {
        SplittableRandom rnd = new SplittableRandom(6);
        for (PlanContext ctx : Definitions.sweep()) {
            var s = ctx.shape();
            for (int blockSize : new int[] {1, 5, 16, 24}) {
                int nb = (ctx.keyLength() + blockSize - 1) / blockSize;
                int width = 1 + rnd.nextInt(5);
                int heads = s.kvHeads();
                int[] data = randomLists(rnd, s.batch(), heads, ctx.queryLength(), width, nb);
                Pattern p = Patterns.rowBlockIndices(IndexTensor.of(data, s.batch(), heads, ctx.queryLength(), width), null,
                        blockSize);
                SparsePlan plan = p.plan(ctx);
                Definitions.assertTokenSet(plan, (b, h, r, k) -> Definitions.causalOk(ctx, r, k)
                        && listed(data, heads, ctx.queryLength(), width, b, s.kvHeadOf(h), r, k / blockSize, width), p.name());
                assertSharing(plan, heads);
            }
        }
    }

    @Test
    void queryBlockListsAdmitTheirBlocksForEveryRowOfTheBlock() {
        SplittableRandom rnd = new SplittableRandom(7);
        for (PlanContext ctx : Definitions.sweep()) {
            var s = ctx.shape();
            int qb = 1 + rnd.nextInt(20);
            int kb = 1 + rnd.nextInt(20);
            int rows = (ctx.queryLength() + qb - 1) / qb;
            int nb = (ctx.keyLength() + kb - 1) / kb;
            int width = 1 + rnd.nextInt(4);
            int[] data = randomLists(rnd, s.batch(), s.qHeads(), rows, width, nb);
            Pattern p = Patterns.queryBlockIndices(IndexTensor.of(data, s.batch(), s.qHeads(), rows, width), null, qb, kb);
            Definitions.assertTokenSet(p.plan(ctx), (b, h, r, k) -> Definitions.causalOk(ctx, r, k)
                    && listed(data, s.qHeads(), rows, width, b, h, r / qb, k / kb, width), p.name());
        }
    }

    @Test
    void perRowListsBecomeOneRowTilesExceptSharedAndDensePrefixes() {
        PlanContext ctx = Definitions.ctx(1, 2, 1, 40, 40, 16, true, 16, 8);
        int[][] rows = new int[40][];
        for (int r = 0; r < 40; r++) {
            // rows 0..9: their whole prefix; 10..19: one shared list; 20..39: lists of their own
            rows[r] = r < 10 ? java.util.stream.IntStream.rangeClosed(0, r).toArray()
                    : r < 20 ? new int[] {1, 3, 9} : new int[] {r - 20, r};
        }
        SparsePlan plan = Patterns.tokenLists(rows).plan(ctx);
        HeadLayout l = plan.layout(0, 0);
        assertEquals(1 + 1 + 20, l.tileCount(), l.toString());
        assertEquals(10, l.rowCount(0));
        assertEquals(10, l.rowCount(1));
        assertTrue(l.rowsDisjoint());
        assertEquals(plan.layoutIndex(0, 0), plan.layoutIndex(0, 1));
        Definitions.assertTokenSet(plan, (b, h, r, k) -> k <= r && java.util.Arrays.binarySearch(rows[r], k) >= 0, "rows");
    }

    @Test
    void badEntriesAreNamed() {
        PlanContext ctx = Definitions.ctx(1, 2, 2, 10, 10, 16, true, 8, 8);
        int[] data = new int[2 * 10 * 3];
        java.util.Arrays.fill(data, -1);
        data[(1 * 10 + 5) * 3 + 2] = 10;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Patterns.tokenIndices(IndexTensor.of(data, 1, 2, 10, 3)).plan(ctx));
        assertTrue(e.getMessage().contains("indices[0, 1, 5, 2] = 10 outside [0, 10)"), e.getMessage());
        data[(1 * 10 + 5) * 3 + 2] = -2;
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.tokenIndices(IndexTensor.of(data, 1, 2, 10, 3)).plan(ctx));
        assertTrue(e.getMessage().contains("= -2"), e.getMessage());
        data[(1 * 10 + 5) * 3 + 2] = 1;
        int[] lens = new int[20];
        lens[13] = 4;
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.tokenIndices(IndexTensor.of(data, 1, 2, 10, 3),
                IndexTensor.of(lens, 1, 2, 10, 1)).plan(ctx));
        assertTrue(e.getMessage().contains("lengths[0, 1, 3] = 4 outside [0, 3]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.tokenIndices(IndexTensor.of(new int[27], 1, 3, 9, 1))
                .plan(ctx));
        assertTrue(e.getMessage().contains("does not fit the call"), e.getMessage());
        data[(1 * 10 + 5) * 3 + 2] = 3; // keys 0..9 in blocks of 4: 3 blocks
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.rowBlockIndices(IndexTensor.of(data, 1, 2, 10, 3),
                null, 4).plan(ctx));
        assertTrue(e.getMessage().contains("indices[0, 1, 5, 2] = 3 outside [0, 3)"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Patterns.rowBlockIndices(IndexTensor.of(data, 1, 2, 10, 3),
                IndexTensor.of(new int[10], 1, 1, 10, 1), 4));
        assertTrue(e.getMessage().startsWith("lengths: shape"), e.getMessage());
    }

    @Test
    void deviceViewsPlanAsTheirHostCopies() {
        PlanContext ctx = Definitions.ctx(1, 2, 1, 30, 30, 16, true, 8, 8);
        int[] data = randomLists(new SplittableRandom(9), 1, 1, 30, 4, 30);
        int[] padded = new int[data.length + 7];
        System.arraycopy(data, 0, padded, 7, data.length);
        HostBackedDeviceMemory memory = new HostBackedDeviceMemory(Device.cuda(0), MemorySegment.ofArray(padded));
        IndexTensor onDevice = IndexTensor.wrapDevice(memory, new int[] {1, 1, 30, 4}, new long[] {120, 120, 4, 1}, 7);
        assertEquals(Device.cuda(0), onDevice.device());
        assertThrows(IllegalStateException.class, () -> onDevice.get(0, 0, 0, 0));
        SparsePlan viaDevice = Patterns.tokenIndices(onDevice).plan(ctx);
        SparsePlan viaHost = Patterns.tokenIndices(IndexTensor.of(data, 1, 1, 30, 4)).plan(ctx);
        for (int r = 0; r < 30; r++) {
            assertArrayEquals(TokenSets.keys(viaHost, 0, 0)[r], TokenSets.keys(viaDevice, 0, 0)[r], "row " + r);
        }
    }
}
