package dev.sparsa.cli;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.backend.Backends;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** What the demo ran on: processor, cores, JVM, and every backend with its availability. */
final class MachineInfo {
    private MachineInfo() {
    }

    static Map<String, Object> collect() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cpu", cpuModel());
        m.put("cores", Runtime.getRuntime().availableProcessors());
        m.put("maxHeapMiB", Runtime.getRuntime().maxMemory() >> 20);
        m.put("java", System.getProperty("java.vm.name") + " " + Runtime.version());
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.arch"));
        m.put("vectorModule", ModuleLayer.boot().findModule("jdk.incubator.vector").isPresent());
        Map<String, Object> backends = new LinkedHashMap<>();
        for (AttentionBackend b : Backends.all()) {
            backends.put(b.name(), Map.of("available", b.availability().available(), "reason", b.availability().reason()));
        }
        m.put("backends", backends);
        return m;
    }

    private static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (Exception e) {
            // not Linux: fall through to the architecture
        }
        return System.getProperty("os.arch");
    }
}
