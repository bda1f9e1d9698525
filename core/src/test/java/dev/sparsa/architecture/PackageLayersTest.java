package dev.sparsa.architecture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.constantpool.ClassEntry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Core's packages form floors: a package may use the floors below it, never one above, so core has
 * no package cycles. Read from the compiled classes' constant pools.
 */
class PackageLayersTest {
    /** Bottom to top. */
    private static final List<String> FLOORS = List.of("internal", "tensor", "io", "spec", "plan", "pattern", "kv",
            "backend", "reference", "attention");

    @Test
    void everyPackageUsesOnlyTheFloorsBelowIt() throws IOException {
        Path classes = Path.of("target", "classes", "dev", "sparsa");
        Map<String, TreeSet<String>> uses = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(classes)) {
            files = s.filter(p -> p.toString().endsWith(".class")).toList();
        }
        assertTrue(files.size() > 20, "compiled classes under " + classes.toAbsolutePath());
        for (Path f : files) {
            ClassModel m = ClassFile.of().parse(f);
            String from = floorOf(m.thisClass().asInternalName());
            for (var entry : m.constantPool()) {
                if (entry instanceof ClassEntry c) {
                    String to = floorOf(c.asInternalName());
                    if (to != null && !to.equals(from)) {
                        uses.computeIfAbsent(from, x -> new TreeSet<>()).add(to);
                    }
                }
            }
        }
        List<String> upward = new ArrayList<>();
        uses.forEach((from, tos) -> {
            assertTrue(FLOORS.contains(from), "package dev.sparsa." + from + " has no floor; add it to FLOORS");
            for (String to : tos) {
                if (FLOORS.indexOf(to) > FLOORS.indexOf(from)) {
                    upward.add(from + " -> " + to);
                }
            }
        });
        assertEquals(List.of(), upward, "packages that reach a floor above their own");
    }

    /** The floor (package under dev.sparsa) of an internal class name, or null outside Sparsa. */
    private static String floorOf(String internalName) {
        String n = internalName.replaceFirst("^\\[*L?", "");
        if (!n.startsWith("dev/sparsa/")) {
            return null;
        }
        String rest = n.substring("dev/sparsa/".length());
        int slash = rest.indexOf('/');
        return slash < 0 ? null : rest.substring(0, slash);
    }
}
