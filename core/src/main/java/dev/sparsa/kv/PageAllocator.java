package dev.sparsa.kv;

import java.util.BitSet;

/**
 * Hands out page ids {@code 0 .. pages − 1} of a page pool, lowest free id first (so a run is
 * reproducible), and takes them back. A {@link PagedKvCache} made with an allocator takes pages from
 * it as its sequences grow and returns them when they shrink; callers who manage pages themselves
 * make the cache without one and set block tables directly.
 *
 * <p>Not thread-safe (it belongs to one cache, which is not thread-safe either).
 */
public final class PageAllocator {
    private final int pages;
    private final BitSet used;
    private int inUse;

    /**
     * An allocator of {@code pages} free pages.
     *
     * @throws IllegalArgumentException if {@code pages < 1}
     */
    public PageAllocator(int pages) {
        if (pages < 1) {
            throw new IllegalArgumentException("pages: must be >= 1, got " + pages);
        }
        this.pages = pages;
        this.used = new BitSet(pages);
    }

    /** Pages in the pool. */
    public int capacity() {
        return pages;
    }

    /** Pages not handed out. */
    public int available() {
        return pages - inUse;
    }

    /** Whether {@code page} is handed out. */
    public boolean inUse(int page) {
        return page >= 0 && page < pages && used.get(page);
    }

    /**
     * The lowest free page, now in use.
     *
     * @throws IllegalStateException when every page is in use (the message gives the pool size)
     */
    public int allocate() {
        int p = used.nextClearBit(0);
        if (p >= pages) {
            throw new IllegalStateException("page pool: all " + pages + " pages are in use");
        }
        used.set(p);
        inUse++;
        return p;
    }

    /**
     * Marks {@code page} in use (a caller who assembles a block table from chosen ids).
     *
     * @throws IllegalArgumentException if the page is out of range or already in use
     */
    public void claim(int page) {
        if (page < 0 || page >= pages) {
            throw new IllegalArgumentException("page: " + page + " outside the pool's [0, " + pages + ")");
        }
        if (used.get(page)) {
            throw new IllegalArgumentException("page: " + page + " is already in use");
        }
        used.set(page);
        inUse++;
    }

    /**
     * Returns {@code page} to the pool.
     *
     * @throws IllegalArgumentException if the page is out of range or not in use
     */
    public void free(int page) {
        if (!inUse(page)) {
            throw new IllegalArgumentException("page: " + page + " is not in use (pool of " + pages + ")");
        }
        used.clear(page);
        inUse--;
    }

    @Override
    public String toString() {
        return "PageAllocator[" + inUse + " of " + pages + " pages in use]";
    }
}
