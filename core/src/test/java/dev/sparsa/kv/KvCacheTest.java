package dev.sparsa.kv;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.KvProblems;
import dev.sparsa.testing.Problems;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

class KvCacheTest {

    @ParameterizedTest
    @EnumSource(DType.class)
    void pagedAndContiguousHoldTheAppendedRows(DType dtype) {
        int[] lengths = {0, 1, 17, 40, 33};
        KvProblems.Caches c = KvProblems.caches(3, dtype, lengths, 2, 8, 16, 8, 7);
        for (int b = 0; b < lengths.length; b++) {
            assertEquals(lengths[b], c.contiguous().length(b));
            assertEquals(lengths[b], c.paged().length(b));
            assertArrayEquals(c.keys()[b].toFloatArray(), c.contiguous().keys(b).toFloatArray());
            assertArrayEquals(c.keys()[b].toFloatArray(), c.paged().keys(b).toFloatArray());
            assertArrayEquals(c.values()[b].toFloatArray(), c.paged().values(b).toFloatArray());
            assertEquals((lengths[b] + 7) / 8, c.paged().pageCount(b));
        }
        // pages of one sequence are not consecutive ids: the pool is shared and had holes
        int[] t = c.paged().blockTable(3);
        boolean scattered = false;
        for (int i = 1; i < t.length; i++) {
            scattered |= t[i] != t[i - 1] + 1;
        }
        assertTrue(scattered, "block table " + java.util.Arrays.toString(t));
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void pageBoundsAfterAppendsEqualBoundsFromScratch(DType dtype) {
        int[] lengths = {5, 64, 70, 129};
        KvProblems.Caches c = KvProblems.caches(5, dtype, lengths, 3, 16, 8, 16, 9);
        assertBoundsFromScratch(c.paged());
        c.paged().truncate(2, 37);
        c.paged().truncate(3, 128);
        c.paged().truncate(0, 0);
        assertBoundsFromScratch(c.paged());
        // appends after a truncation continue from the new end
        SplittableRandom rnd = new SplittableRandom(1);
        c.paged().append(2, Problems.random(rnd, dtype, Layout.BHSD, 1, 3, 20, 16, 3.0),
                Problems.random(rnd, dtype, Layout.BHSD, 1, 3, 20, 8, 1.0));
        assertEquals(57, c.paged().length(2));
        assertBoundsFromScratch(c.paged());
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void nhdPoolsHoldWhatHndPoolsHold(DType dtype) {
        int kvHeads = 3;
        int d = 8;
        int dv = 5;
        float[] kScales = {0.25f, 0.5f, 1f};
        float[] vScales = {0.125f};
        PagedKvCache[] caches = new PagedKvCache[2];
        for (Layout layout : Layout.values()) {
            caches[layout.ordinal()] = dtype.isScaled()
                    ? PagedKvCache.allocateE4m3(layout, 2, kvHeads, d, dv, 4, 12, true, kScales, vScales)
                    : PagedKvCache.allocate(dtype, layout, 2, kvHeads, d, dv, 4, 12, true);
        }
        PagedKvCache hnd = caches[Layout.BHSD.ordinal()];
        PagedKvCache nhd = caches[Layout.BSHD.ordinal()];
        SplittableRandom rnd = new SplittableRandom(11);
        int[][] chunks = {{0, 3}, {1, 1}, {0, 6}, {1, 9}, {0, 1}, {1, 4}};
        for (int[] c : chunks) {
            Tensor k = Problems.random(rnd, DType.F32, Layout.BHSD, 1, kvHeads, c[1], d, 3.0);
            Tensor v = Problems.random(rnd, DType.F32, Layout.BHSD, 1, kvHeads, c[1], dv, 1.0);
            hnd.append(c[0], k, v);
            nhd.append(c[0], k, v);
        }
        nhd.truncate(1, 13);
        hnd.truncate(1, 13);
        // a token's rows of the three heads side by side, token after token
        assertEquals(d, nhd.keyPages().stride(1));
        assertEquals(kvHeads * d, nhd.keyPages().stride(2));
        assertEquals(kvHeads * dv, nhd.valuePages().stride(2));
        assertEquals(java.util.Optional.of(Layout.BSHD), nhd.pageLayout());
        assertEquals(java.util.Optional.of(Layout.BHSD), hnd.pageLayout());
        assertTrue(nhd.toString().contains(" x 3 heads (NHD), "), nhd.toString());
        assertTrue(hnd.toString().contains(" x 3 heads (HND), "), hnd.toString());
        for (int b = 0; b < 2; b++) {
            assertEquals(hnd.length(b), nhd.length(b));
            assertArrayEquals(hnd.blockTable(b), nhd.blockTable(b));
            assertArrayEquals(hnd.keys(b).toFloatArray(), nhd.keys(b).toFloatArray(), dtype + " keys of " + b);
            assertArrayEquals(hnd.values(b).toFloatArray(), nhd.values(b).toFloatArray(), dtype + " values of " + b);
        }
        assertArrayEquals(hnd.pageBounds().toFloatArray(), nhd.pageBounds().toFloatArray(), dtype + " bounds");
        assertBoundsFromScratch(nhd);
        assertEquals(13 + 10, nhd.length(0) + nhd.length(1));
    }

    @Test
    void pageLayoutIsEmptyForOtherStridesAndRequired() {
        // rows padded to 12 elements: neither HND nor NHD
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 4, 2, 8, 12).narrowHeads(0, 2);
        Tensor padded = Tensor.wrap(k.segment(), DType.F32, new int[] {4, 2, 8, 8}, k.strides(), 0);
        PagedKvCache cache = PagedKvCache.wrap(padded, padded, null, 8, 1, new PageAllocator(4));
        assertEquals(java.util.Optional.empty(), cache.pageLayout());
        assertTrue(cache.toString().contains(" heads (strided), "), cache.toString());
        assertEquals("pageLayout: must be BHSD (HND) or BSHD (NHD), got null",
                assertThrows(IllegalArgumentException.class,
                        () -> PagedKvCache.allocate(DType.F32, null, 1, 2, 8, 8, 8, 4, false)).getMessage());
        assertEquals("pageLayout: must be BHSD (HND) or BSHD (NHD), got null",
                assertThrows(IllegalArgumentException.class, () -> PagedKvCache.allocateE4m3(null, 1, 2, 8, 8, 8, 4,
                        false, new float[] {1f}, new float[] {1f})).getMessage());
    }

    /** Bounds of every page a sequence uses equal the min/max of the page's stored keys below the length. */
    private static void assertBoundsFromScratch(PagedKvCache cache) {
        int d = cache.headDim();
        float[] row = new float[d];
        for (int b = 0; b < cache.batch(); b++) {
            Tensor keys = cache.keys(b);
            int length = cache.length(b);
            for (int pg = 0; pg * cache.pageSize() < length; pg++) {
                int page = cache.blockTable(b)[pg];
                for (int g = 0; g < cache.kvHeads(); g++) {
                    float[] min = new float[d];
                    float[] max = new float[d];
                    java.util.Arrays.fill(min, Float.POSITIVE_INFINITY);
                    java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
                    for (int t = pg * cache.pageSize(); t < Math.min(length, (pg + 1) * cache.pageSize()); t++) {
                        keys.readRow(0, g, t, row, 0);
                        for (int x = 0; x < d; x++) {
                            min[x] = Math.min(min[x], row[x]);
                            max[x] = Math.max(max[x], row[x]);
                        }
                    }
                    float[] gotMin = new float[d];
                    float[] gotMax = new float[d];
                    cache.pageBounds().readRow(page, g, 0, gotMin, 0);
                    cache.pageBounds().readRow(page, g, 1, gotMax, 0);
                    assertArrayEquals(min, gotMin, "min of sequence " + b + " page " + pg + " head " + g);
                    assertArrayEquals(max, gotMax, "max of sequence " + b + " page " + pg + " head " + g);
                }
            }
        }
    }

    @Test
    void badBlockTablesAreRefusedNamingSequenceAndPage() {
        PagedKvCache cache = PagedKvCache.wrap(Tensor.allocate(DType.F32, Layout.BHSD, 8, 1, 16, 8),
                Tensor.allocate(DType.F32, Layout.BHSD, 8, 1, 16, 8), null, 16, 3, null);
        var outside = assertThrows(IllegalArgumentException.class, () -> cache.setBlockTable(1, new int[] {2, 99}, 20));
        assertTrue(outside.getMessage().contains("sequence 1") && outside.getMessage().contains("page 99"),
                outside.getMessage());
        var negative = assertThrows(IllegalArgumentException.class, () -> cache.setBlockTable(2, new int[] {-1}, 1));
        assertTrue(negative.getMessage().contains("sequence 2") && negative.getMessage().contains("page -1"),
                negative.getMessage());
        var tooLong = assertThrows(IllegalArgumentException.class, () -> cache.setBlockTable(0, new int[] {3, 4}, 33));
        assertTrue(tooLong.getMessage().contains("sequence 0") && tooLong.getMessage().contains("page 2"),
                tooLong.getMessage());
        cache.setBlockTable(0, new int[] {3, 4}, 32);
        // a full table without an allocator refuses the append and writes nothing
        Tensor row = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 1, 8);
        var full = assertThrows(IllegalArgumentException.class, () -> cache.append(0, row, row));
        assertTrue(full.getMessage().contains("sequence 0"), full.getMessage());
        assertEquals(32, cache.length(0));
        assertThrows(IllegalArgumentException.class, () -> PagedKvCache.allocate(DType.F32, 1, 1, 8, 8, 12, 4, false));
    }

    @Test
    void allocatorGivesPagesBackAndRefusesAppendsThatDoNotFit() {
        PagedKvCache cache = PagedKvCache.allocate(DType.BF16, 2, 1, 8, 8, 4, 5, true);
        SplittableRandom rnd = new SplittableRandom(2);
        Tensor k = Problems.random(rnd, DType.F32, Layout.BHSD, 1, 1, 9, 8, 1.0);
        cache.append(0, k, k);
        assertEquals(3, cache.pageCount(0));
        assertEquals(2, cache.allocator().available());
        var big = assertThrows(IllegalArgumentException.class, () -> cache.append(1, k, k));
        assertTrue(big.getMessage().contains("3 new page(s), 2"), big.getMessage());
        assertEquals(0, cache.length(1));
        cache.truncate(0, 4);
        assertEquals(1, cache.pageCount(0));
        assertEquals(4, cache.allocator().available());
        cache.append(1, k, k);
        assertEquals(9, cache.length(1));
        // stored values are rounded to the cache's dtype
        assertEquals(DType.BF16.round(k.get(0, 0, 5, 3)), cache.keys(1).get(0, 0, 5, 3));
    }

    @Test
    void appendsRefuseWrongShapes() {
        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 2, 2, 10, 8, 4);
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 3, 8);
        Tensor v = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 3, 4);
        var heads = assertThrows(IllegalArgumentException.class,
                () -> cache.append(0, Tensor.allocate(DType.F32, Layout.BHSD, 1, 3, 3, 8), v));
        assertTrue(heads.getMessage().startsWith("k:"), heads.getMessage());
        assertThrows(IllegalArgumentException.class, () -> cache.append(2, k, v));
        cache.append(1, k, v);
        cache.append(1, k, v);
        cache.append(1, k, v);
        var room = assertThrows(IllegalArgumentException.class, () -> cache.append(1, k, v));
        assertTrue(room.getMessage().contains("sequence 1") && room.getMessage().contains("capacity of 10"),
                room.getMessage());
        assertArrayEquals(new int[] {0, 9}, cache.lengths());
    }

    @Test
    void e4m3CachesStoreAppendedRowsUnderTheirScales() {
        ContiguousKvCache c = ContiguousKvCache.allocateE4m3(1, 2, 8, 8, 8, new float[] {0.5f, 2f}, new float[] {1f});
        PagedKvCache p = PagedKvCache.allocateE4m3(1, 2, 8, 8, 4, 4, true, new float[] {0.5f, 2f}, new float[] {1f});
        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 3, 8);
        Tensor v = Tensor.allocate(DType.F32, Layout.BHSD, 1, 2, 3, 8);
        for (int s = 0; s < 3; s++) {
            for (int d = 0; d < 8; d++) {
                k.set(0, 0, s, d, 0.3f * (s - d));
                k.set(0, 1, s, d, 1000f * (d - 4)); // saturates at ±448 × 2 in head 1
                v.set(0, 1, s, d, d - 2.5f);
            }
        }
        c.append(0, k, v);
        p.append(0, k, v);
        for (KvCache cache : new KvCache[] {c, p}) {
            Tensor keys = cache.keys(0);
            for (int s = 0; s < 3; s++) {
                for (int d = 0; d < 8; d++) {
                    assertEquals(DType.E4M3.round(0.3f * (s - d) / 0.5f) * 0.5f, keys.get(0, 0, s, d), cache + " " + s + " " + d);
                    assertEquals(Math.max(-896f, Math.min(896f, 1000f * (d - 4))), keys.get(0, 1, s, d));
                    assertEquals(DType.E4M3.round(d - 2.5f), cache.values(0).get(0, 1, s, d));
                }
            }
        }
        assertBoundsFromScratch(p);
        assertEquals("dtype: an e4m3 cache needs its scales; use ContiguousKvCache.allocateE4m3",
                assertThrows(IllegalArgumentException.class, () -> ContiguousKvCache.allocate(DType.E4M3, 1, 2, 16, 8, 8))
                        .getMessage());
        assertEquals("dtype: an e4m3 cache needs its scales; use PagedKvCache.allocateE4m3",
                assertThrows(IllegalArgumentException.class,
                        () -> PagedKvCache.allocate(DType.E4M3, 1, 2, 8, 8, 16, 4, false)).getMessage());
        assertEquals("kScales: expected 1 (per tensor) or 2 (per KV head) scales, got 3",
                assertThrows(IllegalArgumentException.class,
                        () -> ContiguousKvCache.allocateE4m3(1, 2, 8, 8, 8, new float[3], new float[] {1f})).getMessage());
        assertEquals("vScales: scale 0 is NaN; scales must be positive and finite",
                assertThrows(IllegalArgumentException.class, () -> PagedKvCache.allocateE4m3(1, 2, 8, 8, 4, 4, false,
                        new float[] {1f}, new float[] {Float.NaN})).getMessage());
        Tensor pool = Tensor.allocate(DType.E4M3, Layout.BHSD, 4, 2, 4, 8).withScales(0.5f, 2f);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PagedKvCache.wrap(pool,
                Tensor.allocate(DType.E4M3, Layout.BHSD, 4, 2, 4, 8), Tensor.allocate(DType.E4M3, Layout.BHSD, 4, 2, 2, 8),
                4, 1, new PageAllocator(4)));
        assertTrue(e.getMessage().startsWith("pageBounds: expected e4m3 [4, 2, 2, 8] on cpu with kPages' scales"),
                e.getMessage());
    }
}
