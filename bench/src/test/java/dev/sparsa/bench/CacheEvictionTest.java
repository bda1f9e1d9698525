package dev.sparsa.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CacheEvictionTest {

    @Test
    void sizesAreReadAsSysfsWritesThem() {
        assertEquals(48L << 10, CacheEviction.parseSize("48K\n"));
        assertEquals(491520L << 10, CacheEviction.parseSize("491520K"));
        assertEquals(32L << 20, CacheEviction.parseSize(" 32M "));
        assertEquals(1L << 30, CacheEviction.parseSize("1G"));
        assertEquals(4096, CacheEviction.parseSize("4096"));
        for (String bad : new String[] {"", "K", "12KB", "-4K", "abc", "1.5M", "9999999999999K"}) {
            assertEquals(0, CacheEviction.parseSize(bad), bad);
        }
    }

    @Test
    void theLargestLevelOfACacheDirectoryCounts(@TempDir Path dir) throws Exception {
        // the layout of /sys/devices/system/cpu/cpu0/cache on a server with a 480 MiB last-level cache
        String[] sizes = {"48K", "64K", "2048K", "491520K"};
        for (int i = 0; i < sizes.length; i++) {
            Path level = Files.createDirectory(dir.resolve("index" + i));
            Files.writeString(level.resolve("size"), sizes[i] + "\n");
        }
        Files.writeString(dir.resolve("uevent"), "");
        assertEquals(491520L << 10, CacheEviction.largestCacheBytes(dir));
        assertEquals(0, CacheEviction.largestCacheBytes(dir.resolve("missing")));
        assertEquals(0, CacheEviction.largestCacheBytes(Files.createDirectory(dir.resolve("empty"))));
    }

    @Test
    void theDefaultIsTwiceTheLargestCacheAndAtLeast64MiB() {
        assertEquals(960, CacheEviction.defaultMib(491520L << 10));
        assertEquals(CacheEviction.MIN_MIB, CacheEviction.defaultMib(0));
        assertEquals(CacheEviction.MIN_MIB, CacheEviction.defaultMib(32L << 20));
        assertEquals(65, CacheEviction.defaultMib((32L << 20) + 1));
        assertEquals(CacheEviction.MAX_MIB, CacheEviction.defaultMib(1L << 40));
    }

    @Test
    void aBufferReadsAllItsLinesAndRefusesSizesOutOfRange() {
        CacheEviction e = new CacheEviction(1);
        assertEquals(1, e.mib());
        e.run();
        e.run();
        // one load of the value 1 per 64-byte line: 16384 lines in a MiB, twice
        assertEquals(2 * 16384, e.sink());
        assertThrows(IllegalArgumentException.class, () -> new CacheEviction(0));
        assertThrows(IllegalArgumentException.class, () -> new CacheEviction(CacheEviction.MAX_MIB + 1));
    }
}
