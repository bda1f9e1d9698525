package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

class HeadGroupingTest {

    /**
     * Outcomes worked out by hand from the rule (8 KV heads; L keys a sequence; whole pages cost 8L an item, a
     * group of 4 heads 4.5L on HND and 5L on NHD, a group of 2 heads 2.25L and 2.5L, a head alone 1.25L).
     */
    @Test
    void choosesTheCandidateWhoseBusiestWorkerTakesLeast() {
        for (boolean hnd : new boolean[] {true, false}) {
            String pool = hnd ? "HND" : "NHD";
            // 6 on 2 workers: 3 each, an even share, no search
            assertArrayEquals(new int[] {8, 8, 8, 8, 8, 8}, HeadGrouping.choose(sequences(6, 4096), 8, 2, hnd), pool);
            // 5 on 2: whole pages 24L; 4 whole + the last in halves 20.5L (HND) or 21L (NHD); quarters tie with
            // more items; every sequence in halves 22.5L or 25L; a head an item 25L
            assertArrayEquals(new int[] {8, 8, 8, 8, 4}, HeadGrouping.choose(sequences(5, 4096), 8, 2, hnd), pool);
            // 17 on 16: whole pages 16L; 16 whole + the last in halves 12.5L or 13L; in quarters 10.25L or
            // 10.5L (fewer whole ties or loses); a head an item 11.25L
            int[] seventeen = filled(17, 8);
            seventeen[16] = 2;
            assertArrayEquals(seventeen, HeadGrouping.choose(sequences(17, 4096), 8, 16, hnd), pool);
            // one long sequence (4000 keys) and four short (1000) on 4 workers: the long one whole takes 32000;
            // every sequence in halves 18000 (HND; quarters tie with more items) and 20000 (NHD, where
            // quarters take 20000 too, a head an item 20000: ties go to fewer items)
            assertArrayEquals(new int[] {4, 4, 4, 4, 4},
                    HeadGrouping.choose(new long[] {1000, 4000, 1000, 1000, 1000}, 8, 4, hnd), pool);
            // fewer sequences than workers: a head an item
            assertNull(HeadGrouping.choose(sequences(15, 4096), 8, 16, hnd), pool);
            // a single KV head: whole pages or nothing to cut
            assertArrayEquals(new int[] {1, 1, 1}, HeadGrouping.choose(new long[] {10, 4000, 7}, 1, 2, hnd), pool);
        }
        // the shortest sequence is cut, wherever it stands
        assertArrayEquals(new int[] {8, 8, 4, 8, 8}, HeadGrouping.choose(new long[] {4096, 4096, 4000, 4096, 4096}, 8,
                2, true));
    }

    /**
     * Over random batches: a sequence is whole or cut into one group size for the whole batch, the whole ones
     * are the longest, and whole pages come back unchanged where they share out within 1/16.
     */
    @Test
    void everyOutcomeIsOneGroupSizeWithTheLongestSequencesWhole() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(1209);
        for (int c = 0; c < 3000; c++) {
            int workers = 1 + rnd.nextInt(40);
            int batch = workers + rnd.nextInt(2 * workers + 1);
            int heads = 1 << rnd.nextInt(4);
            long[] keys = new long[batch];
            for (int b = 0; b < batch; b++) {
                keys[b] = rnd.nextInt(4) == 0 ? 2048 : rnd.nextInt(9000);
            }
            int[] got = HeadGrouping.choose(keys, heads, workers, rnd.nextBoolean());
            String what = "case " + c + ": " + workers + " workers, " + heads + " heads, keys " + Arrays.toString(keys);
            // whole pages dealt longest first, each to the least loaded worker
            long[] sorted = keys.clone();
            Arrays.sort(sorted);
            long[] load = new long[workers];
            long busiest = 0;
            long total = 0;
            for (int i = batch - 1; i >= 0; i--) {
                int w = 0;
                for (int x = 1; x < workers; x++) {
                    w = load[x] < load[w] ? x : w;
                }
                load[w] += sorted[i] * heads;
                busiest = Math.max(busiest, load[w]);
                total += sorted[i] * heads;
            }
            if (busiest * workers <= total * (1 + 1 / 16.0)) {
                int[] whole = new int[batch];
                Arrays.fill(whole, heads);
                assertArrayEquals(whole, got, what + ": whole pages share out within 1/16");
            }
            if (got == null) {
                assertTrue(heads > 1, what);
                continue;
            }
            int cut = heads;
            long shortestWhole = Long.MAX_VALUE;
            long longestCut = -1;
            for (int b = 0; b < batch; b++) {
                if (got[b] == heads) {
                    shortestWhole = Math.min(shortestWhole, keys[b]);
                } else {
                    assertTrue(cut == heads || cut == got[b], what + ": " + Arrays.toString(got));
                    assertTrue(got[b] >= 1 && heads % got[b] == 0 && got[b] <= heads / 2, what);
                    cut = got[b];
                    longestCut = Math.max(longestCut, keys[b]);
                }
            }
            assertTrue(longestCut <= shortestWhole, what + ": " + Arrays.toString(got));
        }
    }

    /**
     * The grouping search's deal against its definition: every item (a whole sequence, keys × heads; or k groups,
     * keys × heads / k × cost each) sorted largest first, each given to a least loaded worker found by a scan.
     */
    @Test
    void itemLoadsDealLargestFirstToTheLeastLoaded() {
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(1208);
        for (int c = 0; c < 2000; c++) {
            int workers = 1 + rnd.nextInt(70);
            int batch = 1 + rnd.nextInt(3 * workers + 2);
            int heads = 1 << rnd.nextInt(4);
            int k = 1 << rnd.nextInt(Integer.numberOfTrailingZeros(heads) + 1);
            int whole = rnd.nextInt(batch + 1);
            double cost = new double[] {1, 1.125, 1.25, 1.7}[rnd.nextInt(4)];
            long[] keys = new long[batch];
            for (int b = 0; b < batch; b++) {
                keys[b] = rnd.nextInt(3) == 0 ? 4096 : rnd.nextInt(9000);
            }
            Arrays.sort(keys);
            for (int b = 0; b < batch / 2; b++) {
                long t = keys[b];
                keys[b] = keys[batch - 1 - b];
                keys[batch - 1 - b] = t;
            }
            java.util.List<Double> items = new java.util.ArrayList<>();
            for (int b = 0; b < batch; b++) {
                for (int x = 0; x < (b < whole ? 1 : k); x++) {
                    items.add(b < whole ? keys[b] * (double) heads : keys[b] * (double) (heads / k) * cost);
                }
            }
            items.sort(java.util.Comparator.reverseOrder());
            double[] load = new double[workers];
            double expected = 0;
            for (double size : items) {
                int w = 0;
                for (int x = 1; x < workers; x++) {
                    w = load[x] < load[w] ? x : w;
                }
                load[w] += size;
                expected = Math.max(expected, load[w]);
            }
            HeadGrouping.ItemLoads loads = new HeadGrouping.ItemLoads(workers);
            String what = "case " + c + ": " + workers + " workers, keys " + Arrays.toString(keys) + ", whole " + whole
                    + ", k " + k + ", cost " + cost;
            assertEquals(expected, loads.busiest(keys, whole, heads, k, cost, Double.POSITIVE_INFINITY), what);
            double cutoff = expected * rnd.nextDouble(0.5, 1.5);
            double cut = loads.busiest(keys, whole, heads, k, cost, cutoff);
            assertTrue(expected > cutoff ? cut > cutoff : cut == expected, what + ", cutoff " + cutoff + ": " + cut);
        }
    }

    private static long[] sequences(int n, long keys) {
        long[] a = new long[n];
        Arrays.fill(a, keys);
        return a;
    }

    private static int[] filled(int n, int heads) {
        int[] a = new int[n];
        Arrays.fill(a, heads);
        return a;
    }
}
