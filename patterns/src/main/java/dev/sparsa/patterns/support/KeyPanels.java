package dev.sparsa.patterns.support;

/**
 * Key rows repacked for scoring one query against many keys: keys are grouped in panels of {@code
 * L} ({@link ScoringSupport#panelLanes()}, the preferred float lane count where the Vector API runs)
 * and stored channel-major inside a panel, so one vector holds channel {@code x} of {@code L}
 * consecutive keys. Each lane then accumulates
 * exactly as {@link Vectors#dot} does (one chain of fused multiply-adds over the channels in
 * order), so every score is
 * <b>bitwise identical</b> to {@code Vectors.dot(q, row, k, key, d)}: vectorising changes the
 * speed, never a selection. Memory: {@code ceil(n / L) · L · d} floats.
 */
public final class KeyPanels {
    private static final ScoringSupport KERNELS = ScoringProvider.get();
    private static final int L = KERNELS.panelLanes();

    private final float[] panels;
    private final int n;
    private final int d;

    private KeyPanels(float[] panels, int n, int d) {
        this.panels = panels;
        this.n = n;
        this.d = d;
    }

    /**
     * Packs the first {@code n} rows of {@code rows} (flat {@code [n · d]}).
     *
     * @throws IllegalArgumentException if {@code n} or {@code d} is negative or the array is too short
     */
    public static KeyPanels of(float[] rows, int n, int d) {
        if (n < 0 || d < 1 || rows == null || rows.length < (long) n * d) {
            throw new IllegalArgumentException("rows: need n >= 0, d >= 1 and n·d floats, got n=" + n + " d=" + d
                    + " length=" + (rows == null ? "null" : rows.length));
        }
        int groups = (n + L - 1) / L;
        float[] p = new float[groups * L * d];
        for (int key = 0; key < n; key++) {
            int base = (key / L) * L * d + key % L;
            int src = key * d;
            for (int x = 0; x < d; x++) {
                p[base + x * L] = rows[src + x];
            }
        }
        return new KeyPanels(p, n, d);
    }

    /**
     * Packs the rows of (batch, head) of a tensor, read row by row (no flat copy of the head first);
     * the same panels as {@code of(Vectors.rows(t, batch, head), seq, dim)}.
     */
    public static KeyPanels of(dev.sparsa.tensor.Tensor t, int batch, int head) {
        return of(t, batch, head, null);
    }

    /**
     * {@link #of(dev.sparsa.tensor.Tensor, int, int)} packed into {@code reuse} when it is large
     * enough ({@link #floatsFor}): a planner that packs one head after another reuses one array
     * instead of allocating (and zeroing) a new one per head. The panels read {@code reuse} until it
     * is packed again.
     */
    public static KeyPanels of(dev.sparsa.tensor.Tensor t, int batch, int head, float[] reuse) {
        int d = t.dim();
        return of(t.seqLen(), d, (first, count, dst) -> {
            for (int j = 0; j < count; j++) {
                t.readRow(batch, head, first + j, dst, j * d);
            }
        }, reuse);
    }

    /** Writes rows {@code [first, first + count)} ({@code d} floats each) to {@code dst[0, count · d)}. */
    @FunctionalInterface
    public interface RowReader {
        void read(int first, int count, float[] dst);
    }

    /**
     * Packs {@code n} rows of width {@code d} produced by {@code reader} (a panel's worth at a time, in
     * ascending order, so it may transform the rows as they go), into {@code reuse} when it is large
     * enough: the same panels as {@code of} of those rows laid out flat, without the flat copy.
     */
    public static KeyPanels of(int n, int d, RowReader reader, float[] reuse) {
        return of(n, d, reader, reuse, null);
    }

    private static KeyPanels of(int n, int d, RowReader reader, float[] reuse, PanelDone after) {
        int groups = (n + L - 1) / L;
        long floats = floatsFor(n, d);
        float[] p = reuse != null && reuse.length >= floats ? reuse : new float[Math.toIntExact(floats)];
        float[] rows = new float[L * d];
        // L rows at a time, transposed so that the panel is written in order
        for (int g = 0; g < groups; g++) {
            int k0 = g * L;
            int m = Math.min(L, n - k0);
            reader.read(k0, m, rows);
            int base = g * L * d;
            if (m == L) {
                KERNELS.transposePanel(rows, d, p, base);
            } else {
                for (int x = 0; x < d; x++) {
                    int at = base + x * L;
                    for (int j = 0; j < L; j++) {
                        p[at + j] = j < m ? rows[j * d + x] : 0f; // a reused array may hold old lanes
                    }
                }
            }
            if (after != null) {
                after.done(rows, k0, m, p, base);
            }
        }
        return new KeyPanels(p, n, d);
    }

    /**
     * {@link #of(int, int, RowReader, float[])} of the rows scaled to unit length: the same panels
     * as {@code of} of the rows after {@code SphericalKMeans.normalizeInPlace}, bit for bit, but each
     * panel is scaled where it was just packed, {@link #panelLanes()} rows side by side ({@link
     * ScoringSupport#normalizePanel}). When {@code unitRows} is not null, it also receives the unit
     * rows laid out flat ({@code [n · d]}, the same values).
     */
    public static KeyPanels ofUnitRows(int n, int d, RowReader reader, float[] reuse, float[] unitRows) {
        if (unitRows != null && unitRows.length < (long) n * d) {
            throw new IllegalArgumentException("unitRows: " + unitRows.length + " floats for " + n + " rows of " + d);
        }
        double[] inv = new double[L];
        return of(n, d, reader, reuse, (rows, first, count, p, base) -> {
            KERNELS.normalizePanel(p, base, d, inv);
            if (unitRows != null) {
                KERNELS.scaleRows(rows, count, d, inv, unitRows, first * d);
            }
        });
    }

    /** Called after each panel is packed: its source rows and the panel. */
    @FunctionalInterface
    private interface PanelDone {
        void done(float[] rows, int first, int count, float[] p, int base);
    }

    /**
     * The packed rows {@code [firstKey, firstKey + count)} laid out flat again: {@code dst[(key −
     * firstKey) · d + x]} is channel {@code x} of {@code key} (the values packed, moved, not
     * computed); {@code firstKey} a multiple of {@link #panelLanes()}. {@code dst} needs room for
     * {@code count} rounded up to the lane count rows (whole panels are written; the rows past the
     * last key are zero).
     *
     * @throws IllegalArgumentException if {@code firstKey} is not a multiple of the lane count, the
     *     range exceeds the keys packed or {@code dst} is too short
     */
    public void rows(int firstKey, int count, float[] dst) {
        if (firstKey < 0 || firstKey % L != 0 || count < 0 || (long) firstKey + count > n
                || dst.length < (long) paddedLength(count) * d) {
            throw new IllegalArgumentException("rows: keys [" + firstKey + ", +" + count + ") of " + n + " into "
                    + dst.length + " floats");
        }
        for (int g = 0; g < (count + L - 1) / L; g++) {
            KERNELS.untransposePanel(panels, firstKey * d + g * L * d, d, dst, g * L * d);
        }
    }

    /** Channel {@code x} of packed row {@code key}, as it was packed. */
    public float get(int key, int x) {
        return panels[(key / L) * L * d + x * L + key % L];
    }

    /** Floats the panels of {@code n} keys of width {@code d} take. */
    public static long floatsFor(int n, int d) {
        return (long) ((n + L - 1) / L) * L * d;
    }

    /** The packed floats, to hand to a later {@code of} call as its {@code reuse} array. */
    public float[] array() {
        return panels;
    }

    /** Keys packed. */
    public int size() {
        return n;
    }

    /**
     * {@code out[key] = Vectors.dot(q, row, rows, key, d)} for {@code key} in {@code [0, count)},
     * bitwise. {@code out} needs room for {@code count} rounded up to the lane count.
     *
     * @throws IllegalArgumentException if {@code count} exceeds the keys packed or {@code out} is too short
     */
    public void dots(float[] q, int row, int count, float[] out) {
        dots(q, row, 1, count, out, 0);
    }

    /**
     * The scores of {@code queries} consecutive query rows from {@code firstRow}: {@code out[j · stride
     * + key] = Vectors.dot(q, firstRow + j, rows, key, d)}, bitwise, for {@code key < count}. Each
     * panel is loaded once for all the queries (it stays in L1), so the loop runs at arithmetic speed
     * rather than at memory speed. {@code stride} must be at least {@code paddedLength(count)}.
     *
     * @throws IllegalArgumentException if {@code count} exceeds the keys packed or {@code out} is too short
     */
    public void dots(float[] q, int firstRow, int queries, int count, float[] out, int stride) {
        dots(q, firstRow, queries, count, out, stride, null);
    }

    /**
     * {@link #dots(float[], int, int, int, float[], int)} where query {@code j} needs only its first
     * {@code counts[j] ≤ count} keys (causal pooled queries): panels past a query group's largest
     * count are skipped for that group, and only the scores below each query's count are defined.
     * With {@code counts == null} every query needs all {@code count} keys.
     *
     * @throws IllegalArgumentException as the other form, or if {@code counts} is shorter than {@code queries}
     */
    public void dots(float[] q, int firstRow, int queries, int count, float[] out, int stride, int[] counts) {
        dots(q, firstRow, queries, 0, count, out, stride, counts);
    }

    /**
     * The scores of {@code queries} consecutive query rows from {@code firstRow} against the keys
     * {@code [firstKey, firstKey + count)}: {@code out[j · stride + key − firstKey] = Vectors.dot(q,
     * firstRow + j, rows, key, d)}, bitwise; {@code firstKey} a multiple of {@link #panelLanes()}.
     * A pass over the keys a range at a time (the range's panels still in cache for a second look).
     *
     * @throws IllegalArgumentException if {@code firstKey} is not a multiple of the lane count, or as
     *     the other forms
     */
    public void dotsFrom(float[] q, int firstRow, int queries, int firstKey, int count, float[] out, int stride) {
        if (firstKey < 0 || firstKey % L != 0) {
            throw new IllegalArgumentException("firstKey: " + firstKey + " is not a multiple of " + L);
        }
        dots(q, firstRow, queries, firstKey, count, out, stride, null);
    }

    private void dots(float[] q, int firstRow, int queries, int firstKey, int count, float[] out, int stride, int[] counts) {
        if (counts != null && counts.length < queries) {
            throw new IllegalArgumentException("counts: " + counts.length + " for " + queries + " queries");
        }
        int padded = paddedLength(count);
        if (count < 0 || (long) firstKey + count > n || queries < 1 || (queries > 1 && stride < padded)
                || out.length < (long) (queries - 1) * stride + padded) {
            throw new IllegalArgumentException("count: " + count + " keys of " + n + " for " + queries
                    + " queries into out of length " + out.length + " with stride " + stride);
        }
        int g0 = firstKey / L;
        int groups = g0 + (count + L - 1) / L;
        int shift = -firstKey; // the kernels write key g · L + i at out[base + g · L + i]
        // panel quads, then pairs, outer (they stay in L1 while every query passes over them),
        // queries inner
        int g = g0;
        if (counts == null && L >= 16) { // sixteen accumulators: with 8 lanes (AVX2, 16 registers) they would spill
            for (; g + 3 < groups; g += 4) {
                int j = 0;
                for (; j + 3 < queries; j += 4) {
                    KERNELS.fourByFour(panels, d, q, firstRow + j, g, out, shift + j * stride, stride);
                }
                for (; j < queries; j++) {
                    KERNELS.oneByTwo(panels, d, q, firstRow + j, g, out, shift + j * stride);
                    KERNELS.oneByTwo(panels, d, q, firstRow + j, g + 2, out, shift + j * stride);
                }
            }
        }
        for (; g + 1 < groups; g += 2) {
            int first = g * L; // first key of this panel pair
            int j = 0;
            for (; j + 3 < queries; j += 4) {
                if (counts == null || Math.max(Math.max(counts[j], counts[j + 1]), Math.max(counts[j + 2], counts[j + 3])) > first) {
                    KERNELS.fourByTwo(panels, d, q, firstRow + j, g, out, shift + j * stride, stride);
                }
            }
            for (; j < queries; j++) {
                if (counts == null || counts[j] > first) {
                    KERNELS.oneByTwo(panels, d, q, firstRow + j, g, out, shift + j * stride);
                }
            }
        }
        if (g < groups) {
            // the last single panel: eight queries at a time keep eight chains in flight
            int j = 0;
            for (; j + 7 < queries; j += 8) {
                if (counts == null || maxCount(counts, j, 8) > g * L) {
                    KERNELS.eightByOne(panels, d, q, firstRow + j, g, out, shift + j * stride, stride);
                }
            }
            for (; j < queries; j++) {
                if (counts == null || counts[j] > g * L) {
                    KERNELS.oneByOne(panels, d, q, firstRow + j, g, out, shift + j * stride);
                }
            }
        }
    }

    private static int maxCount(int[] counts, int from, int n) {
        int m = counts[from];
        for (int j = from + 1; j < from + n; j++) {
            m = Math.max(m, counts[j]);
        }
        return m;
    }

    /** {@code count} rounded up to a whole number of panels: the length {@link #dots} writes. */
    public static int paddedLength(int count) {
        return (count + L - 1) / L * L;
    }
}
