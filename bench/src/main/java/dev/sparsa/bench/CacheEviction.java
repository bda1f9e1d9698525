package dev.sparsa.bench;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Reads a buffer larger than the CPU's caches, one load per 64-byte line, so that data read before it
 * is no longer cached when a timed step starts: the state of a layer's KV rows in a model, where the
 * other layers' steps run between two steps of one layer.
 *
 * <p>The default size is twice the largest cache the OS reports for CPU 0 (on Linux the {@code size}
 * of {@code /sys/devices/system/cpu/cpu0/cache/index*}), and at least {@value #MIN_MIB} MiB. A fixed
 * 64 MiB leaves a sparse step's rows (tens of MiB) in a last-level cache of hundreds of MiB, which some
 * server processors have; twice the cache also pushes out lines that an adaptive replacement policy
 * would keep against one pass.
 */
public final class CacheEviction {
    /** The smallest default, in MiB: where the OS reports no cache, or a small one. */
    public static final int MIN_MIB = 64;
    /** The largest size accepted, in MiB (the buffer is one {@code long[]}). */
    public static final int MAX_MIB = 16 * 1024 - 1;

    private final long[] buffer;
    private long sink;

    /**
     * A buffer of {@code mib} MiB, allocated and written now.
     *
     * @throws IllegalArgumentException unless {@code 1 <= mib <= MAX_MIB}
     */
    public CacheEviction(int mib) {
        if (mib < 1 || mib > MAX_MIB) {
            throw new IllegalArgumentException("cache eviction: MiB must be in [1, " + MAX_MIB + "], got " + mib);
        }
        buffer = new long[mib << 17];
        Arrays.fill(buffer, 1L);
    }

    /** The buffer's size in MiB. */
    public int mib() {
        return buffer.length >> 17;
    }

    /** Reads the whole buffer on the calling thread, one load per 64-byte line (not timed by anything here). */
    public void run() {
        long a = 0;
        long b = 0;
        int i = 0;
        for (; i + 8 < buffer.length; i += 16) {
            a += buffer[i];
            b += buffer[i + 8];
        }
        for (; i < buffer.length; i += 8) {
            a += buffer[i];
        }
        sink += a + b;
    }

    /** The sum of every read so far (kept so that the JIT cannot drop the reads). */
    public long sink() {
        return sink;
    }

    /** The default size in MiB for this machine: {@link #defaultMib(long)} of CPU 0's largest cache. */
    public static int defaultMib() {
        return defaultMib(largestCacheBytes(Path.of("/sys/devices/system/cpu/cpu0/cache")));
    }

    /**
     * Twice {@code largestCacheBytes}, rounded up to whole MiB, at least {@value #MIN_MIB} and at most
     * {@value #MAX_MIB}; {@value #MIN_MIB} where it is 0 (unknown).
     */
    public static int defaultMib(long largestCacheBytes) {
        long mib = (2 * Math.max(0, largestCacheBytes) + (1 << 20) - 1) >> 20;
        return (int) Math.min(MAX_MIB, Math.max(MIN_MIB, mib));
    }

    /**
     * The largest {@code size} among the {@code index*} folders of a Linux cache directory ({@code
     * /sys/devices/system/cpu/cpuN/cache}), in bytes; 0 where there is none or none can be read.
     */
    static long largestCacheBytes(Path cacheDir) {
        long largest = 0;
        try (DirectoryStream<Path> levels = Files.newDirectoryStream(cacheDir, "index*")) {
            for (Path level : levels) {
                Path size = level.resolve("size");
                if (Files.isReadable(size)) {
                    largest = Math.max(largest, parseSize(Files.readString(size)));
                }
            }
        } catch (IOException | RuntimeException e) {
            // no such directory (not Linux, or a container that hides it): the size is unknown
            return 0;
        }
        return largest;
    }

    /**
     * A cache size as sysfs writes it: digits with an optional {@code K}, {@code M} or {@code G} (powers
     * of 1024), surrounding white space ignored; 0 for anything else.
     */
    static long parseSize(String text) {
        String s = text.strip().toUpperCase(Locale.ROOT);
        int shift = 0;
        if (s.endsWith("K") || s.endsWith("M") || s.endsWith("G")) {
            shift = switch (s.charAt(s.length() - 1)) {
                case 'K' -> 10;
                case 'M' -> 20;
                default -> 30;
            };
            s = s.substring(0, s.length() - 1);
        }
        if (s.isEmpty() || s.length() > 12 || !s.chars().allMatch(Character::isDigit)) {
            return 0;
        }
        long value = Long.parseLong(s);
        return value > Long.MAX_VALUE >> shift ? 0 : value << shift;
    }
}
