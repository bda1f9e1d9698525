package dev.sparsa.cpu;

import java.util.Arrays;

/**
 * A long-indexed f32 array in pages, so that no single Java array has to hold it (a slice of 2^20
 * rows × 8 stacked heads × 256 values is 2^31 floats, one past the largest array). Pages are
 * allocated when first written (the last one only as long as it needs); reading a page never written
 * gives {@code fill}.
 */
final class FloatPages {
    private final int pageBits;
    private final int pageMask;
    private final float fill;
    private final long size;
    private final float[][] pages;

    /** {@code size} floats reading {@code fill} until written, in pages of {@code 2^pageBits}. */
    FloatPages(long size, int pageBits, float fill) {
        if (size < 0 || pageBits < 1 || pageBits > 30) {
            throw new IllegalArgumentException("pages: size " + size + ", page bits " + pageBits);
        }
        this.pageBits = pageBits;
        this.pageMask = (1 << pageBits) - 1;
        this.fill = fill;
        this.size = size;
        long count = (size + pageMask) >>> pageBits;
        if (count > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("pages: " + size + " floats need more than 2^31 pages");
        }
        this.pages = new float[(int) count][];
    }

    float get(long i) {
        float[] p = pages[(int) (i >>> pageBits)];
        return p == null ? fill : p[(int) (i & pageMask)];
    }

    void set(long i, float v) {
        page(i)[(int) (i & pageMask)] = v;
    }

    /** Copies {@code n} floats from {@code i} (within one page or across pages) into {@code dst[at..]}. */
    void read(long i, float[] dst, int at, int n) {
        while (n > 0) {
            float[] p = pages[(int) (i >>> pageBits)];
            int off = (int) (i & pageMask);
            int m = Math.min(n, pageMask + 1 - off);
            if (p == null) {
                Arrays.fill(dst, at, at + m, fill);
            } else {
                System.arraycopy(p, off, dst, at, m);
            }
            i += m;
            at += m;
            n -= m;
        }
    }

    /** Copies {@code n} floats from {@code src[at..]} to {@code i..}. */
    void write(long i, float[] src, int at, int n) {
        while (n > 0) {
            float[] p = page(i);
            int off = (int) (i & pageMask);
            int m = Math.min(n, pageMask + 1 - off);
            System.arraycopy(src, at, p, off, m);
            i += m;
            at += m;
            n -= m;
        }
    }

    private float[] page(long i) {
        int pi = (int) (i >>> pageBits);
        float[] p = pages[pi];
        if (p == null) {
            p = new float[(int) Math.min(pageMask + 1L, size - ((long) pi << pageBits))]; // the last page holds the rest
            if (fill != 0f) {
                Arrays.fill(p, fill);
            }
            pages[pi] = p;
        }
        return p;
    }
}
