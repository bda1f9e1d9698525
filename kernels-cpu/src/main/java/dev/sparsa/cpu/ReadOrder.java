package dev.sparsa.cpu;

/**
 * The order in which a read pass ({@link DecodeMath#readRows}) takes scattered pieces of memory. Each
 * piece that does not follow the one before it starts a new hardware prefetch stream; taking a few
 * pieces at a time, a row of each in turn, starts their streams together. A read pass changes no
 * result, so neither does its order. Measured on a 2-vCPU Zen 5 (docs/PERFORMANCE.md, "Quest's pages
 * read four pieces at a time" and "Whole pages two at a time"): Quest's decode over 16-token pages
 * 1.18–1.27 × faster (f32) and 1.10–1.20 × (bf16) four pieces at a time; runs of single scattered rows
 * (top-k) gained nothing, and one long stream cut into four taken in turn was read a quarter slower, so
 * single rows and whole streams keep their order. In a pool whose pages lie in a random order, Quest's
 * selection reads its page bounds four pages at a time (1.08–1.10 × faster for f32, 1.05–1.07 × for
 * bf16; two at a time was no faster), and dense decode reads whole pages two at a time: against one
 * after another, 1.03 × faster for f32 pages of 64 KiB of keys (four at a time was 0.99 ×), 1.06–1.07 ×
 * for bf16 pages of 32 and 64 KiB (two at a time 1.04 × faster than four). A pool read in address order
 * is read as before.
 */
final class ReadOrder {
    /** Pieces whose rows a read pass takes in turn: runs of rows, and Quest's page bounds. */
    static final int WAYS = 4;
    /** Whole pages of K or V whose rows a read pass takes in turn (dense decode on a scattered pool). */
    static final int PAGE_WAYS = 2;
    /** Runs of rows whose pieces hold fewer rows than this on average are read in their order. */
    static final int MIN_PIECE_ROWS = 8;

    private ReadOrder() {
    }

    /**
     * A run's K and V rows {@code kOff[0 .. n)}, {@code vOff[0 .. n)} in read order. Pieces are rows that
     * follow one another in K (by {@code kSeq} bytes) and in V (by {@code vSeq}), such as one KV head's
     * part of a page. Where there are several pieces of at least {@value #MIN_PIECE_ROWS} rows on
     * average: the pieces in groups of {@value #WAYS}, row after row of every piece of a group in turn,
     * into {@code outK} and {@code outV} (each row once), and true. Otherwise false: read the rows in
     * their order.
     *
     * @param starts room for {@code n + 1} piece starts (working memory)
     */
    static boolean rows(long[] kOff, long[] vOff, int n, long kSeq, long vSeq, long[] outK, long[] outV,
                        int[] starts) {
        int pieces = 0;
        for (int j = 0; j < n; j++) {
            if (j == 0 || kOff[j] != kOff[j - 1] + kSeq || vOff[j] != vOff[j - 1] + vSeq) {
                starts[pieces++] = j;
            }
        }
        if (pieces < 2 || n < MIN_PIECE_ROWS * pieces) {
            return false;
        }
        starts[pieces] = n;
        interleave(starts, pieces, kOff, vOff, outK, outV);
        return true;
    }

    /** Whether the {@code n} ranges of {@code rangeBytes} at byte offsets {@code off} follow one another. */
    static boolean inOrder(long[] off, int n, long rangeBytes) {
        for (int i = 1; i < n; i++) {
            if (off[i] != off[i - 1] + rangeBytes) {
                return false;
            }
        }
        return true;
    }

    /**
     * The rows of {@code rowBytes} that cover {@code n} ranges of {@code rangeBytes} (a multiple of
     * {@code rowBytes}) at byte offsets {@code off[0 .. n)}, in read order, into {@code out}; returns
     * how many, or −1 where the ranges follow one another in memory ({@link #inOrder}: one piece, read
     * the ranges whole, in their order). A piece is ranges that follow one another; the pieces are taken
     * in groups of {@code ways}, row after row of every piece of a group in turn ({@link #WAYS} for
     * Quest's page bounds in a pool whose pages are scattered, {@link #PAGE_WAYS} for whole pages of K
     * and V).
     *
     * @param ways pieces taken in turn, at least 1
     * @param out room for {@code n · rangeBytes / rowBytes} offsets
     * @param starts room for {@code n + 1} piece starts (working memory)
     */
    static int ranges(long[] off, int n, long rangeBytes, int rowBytes, int ways, long[] out, int[] starts) {
        if (inOrder(off, n, rangeBytes)) {
            return -1;
        }
        int pieces = 0;
        for (int i = 0; i < n; i++) {
            if (i == 0 || off[i] != off[i - 1] + rangeBytes) {
                starts[pieces++] = i;
            }
        }
        starts[pieces] = n;
        int perRange = (int) (rangeBytes / rowBytes);
        int at = 0;
        for (int p0 = 0; p0 < pieces; p0 += ways) {
            int p1 = Math.min(pieces, p0 + ways);
            int longest = 0;
            for (int p = p0; p < p1; p++) {
                longest = Math.max(longest, starts[p + 1] - starts[p]);
            }
            // row c of range r of every piece of the group in turn: the rows of a piece in address order
            for (int r = 0; r < longest; r++) {
                for (int c = 0; c < perRange; c++) {
                    for (int p = p0; p < p1; p++) {
                        if (starts[p] + r < starts[p + 1]) {
                            out[at++] = off[starts[p] + r] + (long) c * rowBytes;
                        }
                    }
                }
            }
        }
        return at;
    }

    /** Rows of pieces {@code starts[p] .. starts[p + 1]}, groups of {@value #WAYS} pieces taken row by row. */
    private static void interleave(int[] starts, int pieces, long[] a, long[] b, long[] outA, long[] outB) {
        int at = 0;
        for (int p0 = 0; p0 < pieces; p0 += WAYS) {
            int p1 = Math.min(pieces, p0 + WAYS);
            int longest = 0;
            for (int p = p0; p < p1; p++) {
                longest = Math.max(longest, starts[p + 1] - starts[p]);
            }
            for (int i = 0; i < longest; i++) {
                for (int p = p0; p < p1; p++) {
                    int j = starts[p] + i;
                    if (j < starts[p + 1]) {
                        outA[at] = a[j];
                        outB[at++] = b[j];
                    }
                }
            }
        }
    }
}
