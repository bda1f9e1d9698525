package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.DType;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The order of a read pass ({@link ReadOrder}): which runs of cache rows are reordered ({@link
 * CacheRows#readOrder}), and that a reordered run reads every row once, four pieces at a time, each
 * piece's rows in their order; scattered page bounds cut into rows the same way, and whole pages two
 * at a time ({@link ReadOrder#ranges}). A read pass changes no result, so only this test sees a row
 * dropped or read twice.
 */
class DecodeReadOrderTest {
    private static final int PAGE = 16;
    private static final int HEADS = 2;
    private static final int DIM = 8;

    /** A pool of 12 pages whose block table lists them out of order, so that no two pages follow in memory. */
    private static CacheRows pagedRows() {
        PagedKvCache cache = PagedKvCache.allocate(DType.F32, 1, HEADS, DIM, DIM, PAGE, 12, false);
        cache.setBlockTable(0, new int[] {5, 2, 9, 0, 7, 11, 3, 1, 10, 4}, 10 * PAGE - 3);
        return new CacheRows(cache);
    }

    /** Rows of KV head 1 at positions {@code pos} (offsets into kOff, vOff). */
    private static int offsets(CacheRows rows, int[] pos, long[] kOff, long[] vOff) {
        rows.offsets(0, 1, pos, pos.length, kOff, vOff);
        return pos.length;
    }

    @Test
    void wholePagesHeadByHeadAreTakenFourAtATimeEachRowOnce() {
        CacheRows rows = pagedRows();
        // Quest-like: pages 1, 3, 4, 6, 8 and the last, partial page (13 keys), head 1's rows only
        List<Integer> keys = new ArrayList<>();
        for (int page : new int[] {1, 3, 4, 6, 8}) {
            for (int s = 0; s < PAGE; s++) {
                keys.add(page * PAGE + s);
            }
        }
        for (int t = 9 * PAGE; t < 10 * PAGE - 3; t++) {
            keys.add(t);
        }
        int[] pos = keys.stream().mapToInt(Integer::intValue).toArray();
        int n = pos.length;
        long[] kOff = new long[n];
        long[] vOff = new long[n];
        offsets(rows, pos, kOff, vOff);
        long[] outK = new long[n];
        long[] outV = new long[n];
        assertTrue(rows.readOrder(kOff, vOff, n, outK, outV, new int[n + 1]));
        // the first four pieces' rows in turn: row 0 of pages 1, 3, 4, 6, then row 1 of each, …
        int[] firsts = {0, PAGE, 2 * PAGE, 3 * PAGE};
        for (int i = 0; i < PAGE; i++) {
            for (int p = 0; p < 4; p++) {
                assertEquals(kOff[firsts[p] + i], outK[4 * i + p], "row " + i + " of piece " + p);
                assertEquals(vOff[firsts[p] + i], outV[4 * i + p], "value row " + i + " of piece " + p);
            }
        }
        // then the last group: page 8 (16 rows) and the partial page (13 rows) in turn, the longer one ending alone
        int at = 4 * PAGE;
        for (int i = 0; i < PAGE; i++) {
            assertEquals(kOff[4 * PAGE + i], outK[at++]);
            if (i < PAGE - 3) {
                assertEquals(kOff[5 * PAGE + i], outK[at++]);
            }
        }
        assertEquals(n, at);
        assertSameRows(kOff, outK, n);
        assertSameRows(vOff, outV, n);
    }

    @Test
    void oneStreamAndScatteredRowsKeepTheirOrder() {
        CacheRows rows = pagedRows();
        long[] kOff = new long[64];
        long[] vOff = new long[64];
        long[] outK = new long[64];
        long[] outV = new long[64];
        int[] starts = new int[65];
        // inside one page: one piece
        int[] onePage = new int[PAGE];
        Arrays.setAll(onePage, j -> 2 * PAGE + j);
        assertFalse(rows.readOrder(kOff, vOff, offsets(rows, onePage, kOff, vOff), outK, outV, starts));
        // top-k-like: single rows of many pages, pieces of fewer than MIN_PIECE_ROWS rows
        int[] scattered = new int[20];
        Arrays.setAll(scattered, j -> (j % 10) * PAGE + j / 10 * 5);
        Arrays.sort(scattered);
        assertFalse(rows.readOrder(kOff, vOff, offsets(rows, scattered, kOff, vOff), outK, outV, starts));
        // a contiguous cache's run of one head: one piece however long
        ContiguousKvCache flat = ContiguousKvCache.allocate(DType.BF16, 1, HEADS, 256, DIM, DIM);
        CacheRows flatRows = new CacheRows(flat);
        int[] run = new int[64];
        Arrays.setAll(run, j -> 100 + j);
        flatRows.offsets(0, 1, run, 64, kOff, vOff);
        assertFalse(flatRows.readOrder(kOff, vOff, 64, outK, outV, starts));
    }

    @Test
    void twoPiecesAtTheMinimumAverageAreReordered() {
        CacheRows rows = pagedRows();
        int half = ReadOrder.MIN_PIECE_ROWS;
        int[] pos = new int[2 * half];
        for (int j = 0; j < half; j++) {
            pos[j] = PAGE - half + j; // the end of page 0
            pos[half + j] = 3 * PAGE + j; // the start of page 3
        }
        long[] kOff = new long[pos.length];
        long[] vOff = new long[pos.length];
        long[] outK = new long[pos.length];
        long[] outV = new long[pos.length];
        int[] starts = new int[pos.length + 1];
        assertTrue(rows.readOrder(kOff, vOff, offsets(rows, pos, kOff, vOff), outK, outV, starts));
        assertEquals(kOff[0], outK[0]);
        assertEquals(kOff[half], outK[1]);
        assertSameRows(kOff, outK, pos.length);
        // one row fewer in the second piece: below the average
        assertFalse(rows.readOrder(kOff, vOff, pos.length - 1, outK, outV, starts));
    }

    /** Ranges of 4 rows of 64 bytes: the first two follow one another (one piece of 8 rows), then four alone. */
    private static final long RANGE = 4 * 64;
    private static final int ROW = 64;
    private static final long[] SCATTERED = {1024, 1024 + RANGE, 8192, 4096, 65536, 16384};

    @Test
    void scatteredRangesAreCutIntoRowsFourPiecesAtATime() {
        long[] expected = new long[SCATTERED.length * 4];
        int at = inTurn(expected, 0, new long[] {1024, 8192, 4096, 65536}, new int[] {8, 4, 4, 4});
        inTurn(expected, at, new long[] {16384}, new int[] {4});
        assertArrayEquals(expected, cut(ReadOrder.WAYS));
        // ranges that follow one another: one piece, read whole
        long[] inOrder = {4096, 4096 + RANGE, 4096 + 2 * RANGE};
        assertEquals(-1, ReadOrder.ranges(inOrder, 3, RANGE, ROW, ReadOrder.WAYS, new long[12], new int[4]));
        assertTrue(ReadOrder.inOrder(inOrder, 3, RANGE));
    }

    @Test
    void wholePagesAreCutIntoRowsTwoPiecesAtATime() {
        assertEquals(2, ReadOrder.PAGE_WAYS);
        long[] expected = new long[SCATTERED.length * 4];
        int at = inTurn(expected, 0, new long[] {1024, 8192}, new int[] {8, 4});
        at = inTurn(expected, at, new long[] {4096, 65536}, new int[] {4, 4});
        inTurn(expected, at, new long[] {16384}, new int[] {4});
        assertArrayEquals(expected, cut(ReadOrder.PAGE_WAYS));
    }

    /** {@link #SCATTERED} cut into rows, {@code ways} pieces at a time. */
    private static long[] cut(int ways) {
        int n = SCATTERED.length;
        long[] out = new long[n * 4];
        assertEquals(n * 4, ReadOrder.ranges(SCATTERED, n, RANGE, ROW, ways, out, new int[n + 1]));
        return out;
    }

    /**
     * Writes into {@code expected} from {@code at} the rows of one group: row r of every piece that has
     * one (pieces starting at {@code bases}, {@code rows} rows each) in turn, r from 0; returns the end.
     */
    private static int inTurn(long[] expected, int at, long[] bases, int[] rows) {
        int longest = Arrays.stream(rows).max().orElse(0);
        for (int r = 0; r < longest; r++) {
            for (int p = 0; p < bases.length; p++) {
                if (r < rows[p]) {
                    expected[at++] = bases[p] + (long) r * ROW;
                }
            }
        }
        return at;
    }

    private static void assertSameRows(long[] expected, long[] actual, int n) {
        long[] a = Arrays.copyOf(expected, n);
        long[] b = Arrays.copyOf(actual, n);
        Arrays.sort(a);
        Arrays.sort(b);
        assertArrayEquals(a, b, "every row once");
    }
}
