package dev.sparsa.kv;

import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.Arrays;
import java.util.Optional;

/**
 * A paged KV cache (vLLM's PagedAttention layout): a pool of pages of {@code pageSize} tokens (a
 * power of two), K pages {@code [numPages, kvHeads, pageSize, headDim]} and V pages {@code
 * [numPages, kvHeads, pageSize, valueDim]} in any strides with a unit last axis (the default, HND, is
 * BHSD over the pool; NHD is {@link Layout#BSHD}), and per sequence a block table (page ids in order)
 * and a length: token {@code t} of sequence {@code b} lives in page {@code table_b[t / pageSize]} at
 * slot {@code t mod pageSize}.
 *
 * <p>Pages come from a {@link PageAllocator} when the cache has one ({@link #allocate}, or {@link
 * #wrap} with an allocator): appends take the lowest free page when a sequence fills its last one,
 * and {@link #truncate} gives back pages past the new end. Without one, the caller sets each
 * sequence's block table ({@link #setBlockTable}) and appends fail once a table is full.
 *
 * <p>Quest metadata: with {@code pageBounds} ({@code [numPages, kvHeads, 2, headDim]} in the cache's
 * dtype: axis 2 is the channel-wise minimum, then maximum, of the page's keys as stored) the cache
 * updates the bounds of the pages an append writes from the appended rows alone, so bounds are never
 * recomputed by scanning K; the bounds of a page cover exactly its first {@code length mod
 * pageSize} (or all) slots. Slots past a sequence's length may hold anything. Each channel's pair
 * has {@code min ≤ max}, or NaN in both where a key held NaN; the backends' Quest scores are defined
 * for such pairs (they may take a channel's product with the one bound the query's sign picks), so a
 * caller who writes bounds into a {@link #wrap wrapped} pool keeps to the same.
 *
 * <p>Not thread-safe.
 */
public final class PagedKvCache implements KvCache {
    private final Tensor kPages;
    private final Tensor vPages;
    private final Tensor bounds;
    private final int pageSize;
    private final int pageShift;
    private final PageAllocator allocator;
    private final int[][] tables;
    private final int[] pageCounts;
    private final int[] lengths;

    private PagedKvCache(Tensor kPages, Tensor vPages, Tensor bounds, int pageSize, int batch, PageAllocator allocator) {
        this.kPages = kPages;
        this.vPages = vPages;
        this.bounds = bounds;
        this.pageSize = pageSize;
        this.pageShift = Integer.numberOfTrailingZeros(pageSize);
        this.allocator = allocator;
        this.tables = new int[batch][];
        this.pageCounts = new int[batch];
        this.lengths = new int[batch];
        Arrays.fill(tables, new int[0]);
    }

    /**
     * An empty host cache with a pool of {@code numPages} zeroed heap pages in HND order and its own
     * allocator: {@link #allocate(DType, Layout, int, int, int, int, int, int, boolean)} with {@link Layout#BHSD}.
     *
     * @param pageBounds whether to keep Quest's per-page key bounds
     * @throws IllegalArgumentException if a size is not positive, {@code pageSize} is not a power of
     *     two, the pool does not fit a Java array, or the dtype is e4m3 (whose cache needs its scales:
     *     {@link #allocateE4m3})
     */
    public static PagedKvCache allocate(DType dtype, int batch, int kvHeads, int headDim, int valueDim, int pageSize,
                                        int numPages, boolean pageBounds) {
        return allocate(dtype, Layout.BHSD, batch, kvHeads, headDim, valueDim, pageSize, numPages, pageBounds);
    }

    /**
     * An empty host cache with a pool of {@code numPages} zeroed heap pages in the given order and its own
     * allocator. {@link Layout#BHSD} is HND: a page holds each KV head's rows together, head after head.
     * {@link Layout#BSHD} is NHD (vLLM's order): a page holds a token's rows of every KV head side by side,
     * token after token. Both hold the same sequences and give the same outputs; they differ in which reads
     * are contiguous (docs/decode.md, "Paged reads"). Quest's bounds are {@code [numPages, kvHeads, 2,
     * headDim]} in BHSD order either way.
     *
     * @param pageLayout the pool's memory order, {@link Layout#BHSD} (HND) or {@link Layout#BSHD} (NHD)
     * @param pageBounds whether to keep Quest's per-page key bounds
     * @throws IllegalArgumentException as {@link #allocate(DType, int, int, int, int, int, int, boolean)}, or if
     *     {@code pageLayout} is null
     */
    public static PagedKvCache allocate(DType dtype, Layout pageLayout, int batch, int kvHeads, int headDim,
                                        int valueDim, int pageSize, int numPages, boolean pageBounds) {
        if (dtype != null && dtype.isScaled()) {
            throw new IllegalArgumentException("dtype: an e4m3 cache needs its scales; use PagedKvCache.allocateE4m3");
        }
        return allocate(dtype, pageLayout, batch, kvHeads, headDim, valueDim, pageSize, numPages, pageBounds, null,
                null);
    }

    /**
     * An empty host cache of e4m3 pages, as {@link #allocate}: keys are stored as {@code
     * floatToE4m3(value / kScales[head])}, values under {@code vScales}, and read back as code × scale;
     * Quest's bounds are kept in e4m3 under the key scales (the minimum and maximum of stored keys are
     * themselves stored keys, so they are exact).
     *
     * @param kScales one scale for every KV head, or one per KV head
     * @param vScales likewise for the values
     * @throws IllegalArgumentException as {@link #allocate}, or if a scale count is neither 1 nor
     *     {@code kvHeads} or a scale is not positive and finite
     */
    public static PagedKvCache allocateE4m3(int batch, int kvHeads, int headDim, int valueDim, int pageSize, int numPages,
                                            boolean pageBounds, float[] kScales, float[] vScales) {
        return allocateE4m3(Layout.BHSD, batch, kvHeads, headDim, valueDim, pageSize, numPages, pageBounds, kScales,
                vScales);
    }

    /**
     * An empty host cache of e4m3 pages in the given order, as {@link #allocateE4m3(int, int, int, int, int, int,
     * boolean, float[], float[])}; {@code pageLayout} as in {@link #allocate(DType, Layout, int, int, int, int, int,
     * int, boolean)}.
     *
     * @throws IllegalArgumentException as {@link #allocateE4m3(int, int, int, int, int, int, boolean, float[],
     *     float[])}, or if {@code pageLayout} is null
     */
    public static PagedKvCache allocateE4m3(Layout pageLayout, int batch, int kvHeads, int headDim, int valueDim,
                                            int pageSize, int numPages, boolean pageBounds, float[] kScales,
                                            float[] vScales) {
        return allocate(DType.E4M3, pageLayout, batch, kvHeads, headDim, valueDim, pageSize, numPages, pageBounds,
                kScales, vScales);
    }

    private static PagedKvCache allocate(DType dtype, Layout pageLayout, int batch, int kvHeads, int headDim,
                                         int valueDim, int pageSize, int numPages, boolean pageBounds, float[] kScales,
                                         float[] vScales) {
        requirePageSize(pageSize);
        if (batch < 1) {
            throw new IllegalArgumentException("batch: must be >= 1, got " + batch);
        }
        if (pageLayout == null) {
            throw new IllegalArgumentException("pageLayout: must be BHSD (HND) or BSHD (NHD), got null");
        }
        Tensor k = Tensor.allocate(dtype, pageLayout, numPages, kvHeads, pageSize, headDim);
        Tensor v = Tensor.allocate(dtype, pageLayout, numPages, kvHeads, pageSize, valueDim);
        Tensor b = pageBounds ? Tensor.allocate(dtype, Layout.BHSD, numPages, kvHeads, 2, headDim) : null;
        if (dtype.isScaled()) {
            k = k.withScales(CacheViews.checkScales("kScales", kScales, kvHeads));
            v = v.withScales(CacheViews.checkScales("vScales", vScales, kvHeads));
            b = b == null ? null : b.withScales(kScales);
        }
        return new PagedKvCache(k, v, b, pageSize, batch, new PageAllocator(numPages));
    }

    /**
     * A cache over the caller's page pool (host or device tensors, which the caller closes), with
     * every sequence empty.
     *
     * @param kPages     {@code [numPages, kvHeads, pageSize, headDim]}
     * @param vPages     {@code [numPages, kvHeads, pageSize, valueDim]}, same dtype and device
     * @param pageBounds {@code [numPages, kvHeads, 2, headDim]} in the same dtype and device (e4m3: with
     *                   the scales of {@code kPages}), or null for no Quest metadata
     * @param allocator  where appends take pages ({@code capacity() == numPages}), or null when the
     *                   caller sets block tables
     * @throws IllegalArgumentException naming the argument that does not fit
     */
    public static PagedKvCache wrap(Tensor kPages, Tensor vPages, Tensor pageBounds, int pageSize, int batch,
                                    PageAllocator allocator) {
        requirePageSize(pageSize);
        CacheViews.checkStorage("kPages", kPages);
        CacheViews.checkStorage("vPages", vPages);
        if (batch < 1) {
            throw new IllegalArgumentException("batch: must be >= 1, got " + batch);
        }
        if (kPages.seqLen() != pageSize || vPages.seqLen() != pageSize) {
            throw new IllegalArgumentException("kPages, vPages: axis 2 must be the page size " + pageSize + ", got "
                    + kPages.seqLen() + " and " + vPages.seqLen());
        }
        if (vPages.batch() != kPages.batch() || vPages.heads() != kPages.heads()) {
            throw new IllegalArgumentException("vPages: shape " + Arrays.toString(vPages.shape())
                    + " does not match kPages' " + Arrays.toString(kPages.shape()) + " in pages and heads");
        }
        if (vPages.dtype() != kPages.dtype() || !vPages.device().equals(kPages.device())) {
            throw new IllegalArgumentException("vPages: " + vPages.dtype() + " on " + vPages.device() + " but kPages are "
                    + kPages.dtype() + " on " + kPages.device());
        }
        if (pageBounds != null) {
            CacheViews.checkStorage("pageBounds", pageBounds);
            if (pageBounds.batch() != kPages.batch() || pageBounds.heads() != kPages.heads() || pageBounds.seqLen() != 2
                    || pageBounds.dim() != kPages.dim() || pageBounds.dtype() != kPages.dtype()
                    || !pageBounds.device().equals(kPages.device())
                    || !pageBounds.sameScales(kPages)) {
                throw new IllegalArgumentException("pageBounds: expected " + kPages.dtype() + " [" + kPages.batch() + ", "
                        + kPages.heads() + ", 2, " + kPages.dim() + "] on " + kPages.device()
                        + (kPages.dtype().isScaled() ? " with kPages' scales" : "") + ", got "
                        + pageBounds.dtype() + " " + Arrays.toString(pageBounds.shape()) + " on " + pageBounds.device());
            }
        }
        if (allocator != null && allocator.capacity() != kPages.batch()) {
            throw new IllegalArgumentException("allocator: manages " + allocator.capacity() + " pages but the pool has "
                    + kPages.batch());
        }
        return new PagedKvCache(kPages, vPages, pageBounds, pageSize, batch, allocator);
    }

    private static void requirePageSize(int pageSize) {
        if (pageSize < 1 || Integer.bitCount(pageSize) != 1) {
            throw new IllegalArgumentException("pageSize: must be a power of two, got " + pageSize);
        }
    }

    // ---------------------------------------------------------------- pages

    /**
     * The pool's memory order: {@link Layout#BHSD} (HND) or {@link Layout#BSHD} (NHD) where both K and V pools
     * are contiguous in that order, else empty (a wrapped pool in other strides, e.g. padded rows).
     */
    public Optional<Layout> pageLayout() {
        Optional<Layout> k = kPages.layout();
        return k.equals(vPages.layout()) ? k : Optional.empty();
    }

    /** Tokens per page (a power of two). */
    public int pageSize() {
        return pageSize;
    }

    /** Pages in the pool. */
    public int numPages() {
        return kPages.batch();
    }

    /** K pages {@code [numPages, kvHeads, pageSize, headDim]} (shared, not copied). */
    public Tensor keyPages() {
        return kPages;
    }

    /** V pages {@code [numPages, kvHeads, pageSize, valueDim]} (shared, not copied). */
    public Tensor valuePages() {
        return vPages;
    }

    /** Quest's bounds {@code [numPages, kvHeads, 2, headDim]} (min, then max), or null when not kept. */
    public Tensor pageBounds() {
        return bounds;
    }

    /** True when the cache keeps per-page key bounds. */
    public boolean hasPageBounds() {
        return bounds != null;
    }

    /** The allocator appends take pages from, or null when the caller manages pages. */
    public PageAllocator allocator() {
        return allocator;
    }

    /** Pages in sequence {@code sequence}'s block table. */
    public int pageCount(int sequence) {
        CacheViews.checkSequence(sequence, batch());
        return pageCounts[sequence];
    }

    /** A copy of sequence {@code sequence}'s block table. */
    public int[] blockTable(int sequence) {
        CacheViews.checkSequence(sequence, batch());
        return Arrays.copyOf(tables[sequence], pageCounts[sequence]);
    }

    /** The page id holding token {@code token} of sequence {@code sequence} (no range check past the table). */
    public int page(int sequence, int token) {
        return tables[sequence][token >>> pageShift];
    }

    /** The block table's array itself, valid up to {@link #pageCount} entries; kernels read it, nobody writes it. */
    int[] tableArray(int sequence) {
        return tables[sequence];
    }

    /**
     * Every block table in one row-major {@code int[batch · width]} (vLLM's {@code block_tables}),
     * rows padded with page 0.
     *
     * @throws IllegalArgumentException if a table has more than {@code width} pages
     */
    public int[] blockTables(int width) {
        int[] flat = new int[batch() * width];
        blockTables(width, flat, 0);
        return flat;
    }

    /**
     * Writes {@link #blockTables(int)} into {@code dst[offset .. offset + batch · width)} (a decode
     * call's metadata, without an array of its own); entries past a table's pages are left as they
     * were.
     *
     * @throws IllegalArgumentException if a table has more than {@code width} pages, or {@code dst}
     *     is null or too short
     */
    public void blockTables(int width, int[] dst, int offset) {
        if (dst == null || offset < 0 || (long) offset + (long) batch() * width > dst.length) {
            throw new IllegalArgumentException("dst: needs " + (long) batch() * width + " ints from " + offset + ", got "
                    + (dst == null ? "null" : dst.length + " ints"));
        }
        for (int b = 0; b < batch(); b++) {
            if (pageCounts[b] > width) {
                throw new IllegalArgumentException("width: sequence " + b + " has " + pageCounts[b] + " pages, more than "
                        + width);
            }
            System.arraycopy(tables[b], 0, dst, offset + b * width, pageCounts[b]);
        }
    }

    /** The most pages any block table holds. */
    public int maxPageCount() {
        int m = 0;
        for (int c : pageCounts) {
            m = Math.max(m, c);
        }
        return m;
    }

    /**
     * Sets sequence {@code sequence}'s block table and length: its tokens {@code 0 .. length − 1} are
     * already in those pages (for example, a prefix shared with another sequence). The bounds of those
     * pages, if kept, are computed from their first {@code length} tokens once, here. With an
     * allocator, the pages must be ones the caller took from it (they are freed by a later {@link
     * #truncate}); the sequence's previous pages are not freed.
     *
     * @throws IllegalArgumentException naming the sequence and page if a page id is outside the pool,
     *     or the length needs more pages than the table has
     */
    public void setBlockTable(int sequence, int[] pages, int length) {
        CacheViews.checkSequence(sequence, batch());
        if (pages == null) {
            throw new IllegalArgumentException("pages: must not be null (sequence " + sequence + ")");
        }
        checkTable(sequence, pages, pages.length, length);
        tables[sequence] = pages.clone();
        pageCounts[sequence] = pages.length;
        lengths[sequence] = length;
        if (bounds != null) {
            for (int i = 0; (long) i * pageSize < length; i++) {
                recomputeBounds(pages[i], Math.min(pageSize, length - i * pageSize));
            }
        }
    }

    private void checkTable(int sequence, int[] table, int count, int length) {
        checkTable(sequence, table, count, count, length);
    }

    /** Checks entries {@code [0, checked)} of {@code table} against the pool and {@code length} against its {@code count} pages. */
    private void checkTable(int sequence, int[] table, int checked, int count, int length) {
        for (int i = 0; i < checked; i++) {
            if (table[i] < 0 || table[i] >= numPages()) {
                throw new IllegalArgumentException("block table: sequence " + sequence + " entry " + i + " names page "
                        + table[i] + ", outside the pool's [0, " + numPages() + ")");
            }
        }
        if (length < 0 || (long) length > (long) count * pageSize) {
            throw new IllegalArgumentException("block table: sequence " + sequence + " has length " + length
                    + ", which needs page " + (length - 1) / pageSize + " of its block table, but the table has "
                    + count + " page(s) of " + pageSize);
        }
    }

    // ---------------------------------------------------------------- KvCache

    @Override
    public int batch() {
        return lengths.length;
    }

    @Override
    public int kvHeads() {
        return kPages.heads();
    }

    @Override
    public int headDim() {
        return kPages.dim();
    }

    @Override
    public int valueDim() {
        return vPages.dim();
    }

    @Override
    public DType dtype() {
        return kPages.dtype();
    }

    @Override
    public Device device() {
        return kPages.device();
    }

    @Override
    public boolean paged() {
        return true;
    }

    @Override
    public int length(int sequence) {
        CacheViews.checkSequence(sequence, batch());
        return lengths[sequence];
    }

    @Override
    public int[] lengths() {
        return lengths.clone();
    }

    @Override
    public void append(int sequence, Tensor k, Tensor v) {
        CacheViews.checkSequence(sequence, batch());
        CacheViews.checkAppended(this, 1, k, v);
        int[] need = new int[batch()];
        need[sequence] = pagesNeeded(sequence, k.seqLen());
        requireRoom(need);
        write(sequence, 0, k, v);
    }

    @Override
    public void appendStep(Tensor k, Tensor v) {
        CacheViews.checkAppended(this, batch(), k, v);
        int[] need = new int[batch()];
        for (int b = 0; b < batch(); b++) {
            need[b] = pagesNeeded(b, k.seqLen());
        }
        requireRoom(need);
        for (int b = 0; b < batch(); b++) {
            write(b, b, k, v);
        }
    }

    /** Pages sequence {@code b} must add to its table to hold {@code n} more tokens. */
    private int pagesNeeded(int b, int n) {
        long end = (long) lengths[b] + n;
        long pages = (end + pageSize - 1) >>> pageShift;
        return (int) Math.max(0, pages - pageCounts[b]);
    }

    private void requireRoom(int[] need) {
        int total = 0;
        for (int b = 0; b < need.length; b++) {
            if (need[b] > 0 && allocator == null) {
                throw new IllegalArgumentException("sequence " + b + ": its block table of " + pageCounts[b]
                        + " page(s) is full at length " + lengths[b] + " and the cache has no allocator; set a longer"
                        + " block table with setBlockTable");
            }
            total += need[b];
        }
        if (allocator != null && total > allocator.available()) {
            throw new IllegalArgumentException("page pool: the append needs " + total + " new page(s), " + allocator.available()
                    + " of " + allocator.capacity() + " are free");
        }
    }

    private void write(int b, int srcBatch, Tensor k, Tensor v) {
        int n = k.seqLen();
        if (n == 0) {
            return;
        }
        Tensor ks = CacheViews.staged(k, kPages);
        Tensor vs = CacheViews.staged(v, vPages);
        int at = lengths[b];
        int done = 0;
        while (done < n) {
            int t = at + done;
            int slot = t & (pageSize - 1);
            int run = Math.min(n - done, pageSize - slot);
            int pageIndex = t >>> pageShift;
            if (pageIndex == pageCounts[b]) {
                addPage(b, allocator.allocate());
            }
            int page = tables[b][pageIndex];
            Tensor.copy(CacheViews.view(ks, srcBatch, done, run), CacheViews.view(kPages, page, slot, run));
            Tensor.copy(CacheViews.view(vs, srcBatch, done, run), CacheViews.view(vPages, page, slot, run));
            if (bounds != null) {
                updateBounds(page, slot == 0, ks, srcBatch, done, run);
            }
            done += run;
        }
        lengths[b] = at + n;
    }

    private void addPage(int b, int page) {
        if (pageCounts[b] == tables[b].length) {
            tables[b] = Arrays.copyOf(tables[b], Math.max(4, tables[b].length * 2));
        }
        tables[b][pageCounts[b]++] = page;
    }

    /** Folds rows {@code from .. from + n} of {@code rows} (host, cache dtype) into {@code page}'s bounds. */
    private void updateBounds(int page, boolean fresh, Tensor rows, int srcBatch, int from, int n) {
        Tensor view = CacheViews.view(bounds, page, 0, 2);
        Tensor host = view.toHost();
        int d = headDim();
        float[] min = new float[d];
        float[] max = new float[d];
        float[] row = new float[d];
        for (int g = 0; g < kvHeads(); g++) {
            if (fresh) {
                Arrays.fill(min, Float.POSITIVE_INFINITY);
                Arrays.fill(max, Float.NEGATIVE_INFINITY);
            } else {
                host.readRow(0, g, 0, min, 0);
                host.readRow(0, g, 1, max, 0);
            }
            for (int i = 0; i < n; i++) {
                rows.readRow(srcBatch, g, from + i, row, 0);
                fold(row, min, max);
            }
            host.writeRow(0, g, 0, min, 0);
            host.writeRow(0, g, 1, max, 0);
        }
        if (!view.isHost()) {
            Tensor.copy(host, view);
        }
    }

    private static void fold(float[] row, float[] min, float[] max) {
        for (int c = 0; c < row.length; c++) {
            // NaN keys are the caller's error; Math.min/max let them reach the bound, as they reach scores
            min[c] = Math.min(min[c], row[c]);
            max[c] = Math.max(max[c], row[c]);
        }
    }

    /** Sets {@code page}'s bounds from its first {@code slots} stored keys (one page, not the cache). */
    private void recomputeBounds(int page, int slots) {
        updateBounds(page, true, CacheViews.view(kPages, page, 0, slots).toHost(), 0, 0, slots);
    }

    @Override
    public void truncate(int sequence, int length) {
        CacheViews.checkSequence(sequence, batch());
        if (length < 0 || length > lengths[sequence]) {
            throw new IllegalArgumentException("length: sequence " + sequence + " holds " + lengths[sequence]
                    + " tokens; cannot truncate to " + length);
        }
        lengths[sequence] = length;
        int keep = (length + pageSize - 1) >>> pageShift;
        if (allocator != null) {
            for (int i = keep; i < pageCounts[sequence]; i++) {
                allocator.free(tables[sequence][i]);
            }
            pageCounts[sequence] = keep;
        }
        int tail = length & (pageSize - 1);
        if (bounds != null && tail != 0) {
            // the page that now ends the sequence lost keys: its bounds come from what it keeps
            recomputeBounds(tables[sequence][keep - 1], tail);
        }
    }

    @Override
    public Tensor keys(int sequence) {
        return gather(kPages, sequence);
    }

    @Override
    public Tensor values(int sequence) {
        return gather(vPages, sequence);
    }

    /** Sequence {@code b}'s rows of {@code pages}, in order, as a new host BHSD tensor. */
    private Tensor gather(Tensor pages, int b) {
        int n = length(b);
        Tensor out = CacheViews.allocateLike(pages, 1, n, pages.dim());
        for (int t = 0; t < n; t += pageSize) {
            int run = Math.min(pageSize, n - t);
            Tensor.copy(CacheViews.view(pages, page(b, t), 0, run), CacheViews.view(out, 0, t, run));
        }
        return out;
    }

    /**
     * Checks that every length is covered by its block table. The tables' page ids are checked when a
     * table is set ({@link #setBlockTable}) and come from the pool's own allocator when a table grows,
     * so they are always inside the pool; this check, run by every decode call, is one comparison
     * per sequence instead of one per page.
     */
    @Override
    public void validate() {
        for (int b = 0; b < batch(); b++) {
            checkTable(b, tables[b], 0, pageCounts[b], lengths[b]);
        }
    }

    @Override
    public String toString() {
        String order = pageLayout().map(l -> l == Layout.BSHD ? "NHD" : "HND").orElse("strided");
        return "PagedKvCache[" + batch() + " sequences, " + numPages() + " pages of " + pageSize + " x " + kvHeads()
                + " heads (" + order + "), " + dtype() + " on " + device() + ", lengths " + Arrays.toString(lengths) + "]";
    }
}
