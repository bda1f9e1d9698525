package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The build's guard against stale kernel images: the committed images and manifest must describe
 * exactly the sources of src/main/cuda (.cu, .cuh, .def), one image per translation unit, each built
 * from the sources it includes as they are now and from its rows of the table. Needs no nvcc and no
 * GPU. When it fails, run kernels-cuda/build-fatbin.sh (or build-fatbin.sh UNIT for the units it
 * names) and commit its outputs. Also: how {@code -Dsparsa.cuda.fatbin} replaces images.
 */
class FatbinManifestTest {
    private static final Path SOURCES = Path.of("src/main/cuda");
    private static final Path RESOURCES = Path.of("src/main/resources/dev/sparsa/cuda");
    private static final String FIX = " — sources and kernel images disagree: run kernels-cuda/build-fatbin.sh (nvcc 13.0) and commit "
            + "src/main/resources/dev/sparsa/cuda/";
    /** The project's limit on a committed file's size. */
    private static final long FILE_LIMIT = 5L << 20;

    @Test
    void manifestHashesEverySourceFile() throws IOException {
        Map<String, String> manifest = Fatbin.manifest();
        Map<String, String> actual = new TreeMap<>();
        try (Stream<Path> files = Files.list(SOURCES)) {
            for (Path p : files.sorted().toList()) {
                actual.put("source." + p.getFileName(), sha256(Files.readAllBytes(p)));
            }
        }
        assertFalse(actual.isEmpty(), "no CUDA sources under " + SOURCES.toAbsolutePath());
        Map<String, String> recorded = new TreeMap<>();
        manifest.forEach((key, value) -> {
            if (key.startsWith("source.")) {
                recorded.put(key, value);
            }
        });
        assertEquals(actual, recorded, "source hashes" + FIX);
    }

    @Test
    void manifestHashesEveryCommittedImage() {
        Map<String, String> m = Fatbin.manifest();
        Set<String> recorded = m.keySet().stream().filter(k -> k.startsWith("image.") && k.endsWith(".sha256"))
                .map(k -> k.substring("image.".length(), k.length() - ".sha256".length())).collect(Collectors.toCollection(TreeSet::new));
        assertEquals(new TreeSet<>(Fatbin.images()), recorded, "images in the manifest" + FIX);
        for (String image : Fatbin.images()) {
            assertEquals(m.get("image." + image + ".sha256"), sha256(Fatbin.image(image)), "hash of " + image + FIX);
        }
    }

    @Test
    void everyImageWasBuiltFromTheCurrentSourcesAndRows() throws IOException {
        Map<String, String> m = Fatbin.manifest();
        List<KernelTableTest.Row> rows = KernelTableTest.rows();
        // a row the generated table does not list yet belongs to no image here (KernelTableTest reports it)
        Map<String, String> imageOf = KernelTable.KERNELS.stream()
                .collect(Collectors.toMap(KernelTable.Kernel::name, KernelTable.Kernel::image));
        List<String> stale = new ArrayList<>();
        for (String image : Fatbin.images()) {
            String sources = m.get("image." + image + ".sources");
            assertTrue(sources != null && !sources.isBlank(), "sources of " + image + FIX);
            List<String> files = Arrays.asList(sources.split(" "));
            // the sources nvcc reported as the unit's dependencies are the files it includes (the table aside)
            Set<String> included = new TreeSet<>(KernelTableTest.includes(image + ".cu"));
            included.remove("sparsa_kernels.def");
            assertEquals(included, new TreeSet<>(files), "sources of " + image + FIX);
            StringBuilder inputs = new StringBuilder();
            for (String f : files) {
                inputs.append(f).append('=').append(sha256(Files.readAllBytes(SOURCES.resolve(f)))).append('\n');
            }
            for (KernelTableTest.Row r : rows) {
                if (image.equals(imageOf.get(r.name()))) {
                    inputs.append(r.text()).append('\n');
                }
            }
            if (!sha256(inputs.toString().getBytes(StandardCharsets.UTF_8)).equals(m.get("image." + image + ".inputs"))) {
                stale.add(image);
            }
        }
        assertEquals(List.of(), stale, "images built from sources or rows that have changed since: run kernels-cuda/build-fatbin.sh "
                + String.join(" ", stale) + " and commit src/main/resources/dev/sparsa/cuda/");
    }

    @Test
    void theCommittedImagesAreTheUnitsAndUnderTheFileSizeLimit() throws IOException {
        Set<String> onDisk;
        try (Stream<Path> files = Files.list(RESOURCES)) {
            onDisk = files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(Fatbin.SUFFIX))
                    .map(n -> n.substring(0, n.length() - Fatbin.SUFFIX.length())).collect(Collectors.toCollection(TreeSet::new));
        }
        assertEquals(new TreeSet<>(Fatbin.images()), onDisk, "images under " + RESOURCES);
        for (String image : Fatbin.images()) {
            long size = Files.size(RESOURCES.resolve(image + Fatbin.SUFFIX));
            assertTrue(size < FILE_LIMIT, image + " is " + size + " bytes, over the 5 MiB limit on a committed file: split its unit");
        }
    }

    @Test
    void manifestRecordsCompilerAndTargets() {
        Map<String, String> m = Fatbin.manifest();
        assertTrue(m.getOrDefault("nvcc", "").startsWith("release 13."), "nvcc version: " + m.get("nvcc"));
        assertEquals("sm_80 sm_90a compute_90", m.get("targets"));
    }

    @Test
    void classpathManifestIsTheCommittedFile() throws IOException {
        byte[] onDisk = Files.readAllBytes(RESOURCES.resolve("sparsa_kernels.manifest"));
        byte[] onClasspath;
        try (var in = Fatbin.class.getResourceAsStream(Fatbin.MANIFEST)) {
            onClasspath = in.readAllBytes();
        }
        assertArrayEquals(onDisk, onClasspath);
    }

    @Test
    void anOverrideReplacesTheImagesNamedAfterIt(@TempDir Path dir) throws IOException {
        Map<String, byte[]> committed = CudaRuntime.images(null);
        assertEquals(Fatbin.images(), List.copyOf(committed.keySet()));
        for (String image : Fatbin.images()) {
            assertArrayEquals(Fatbin.image(image), committed.get(image), image);
        }
        String first = Fatbin.images().get(0);
        String last = Fatbin.images().get(Fatbin.images().size() - 1);
        byte[] a = {1, 2, 3};
        byte[] b = {4, 5};
        Files.write(dir.resolve(first + Fatbin.SUFFIX), a);
        Files.write(dir.resolve(last + Fatbin.SUFFIX), b);
        Files.writeString(dir.resolve("ptxas-report.txt"), "not an image");
        Map<String, byte[]> fromFolder = CudaRuntime.images(dir.toString());
        Map<String, byte[]> fromFile = CudaRuntime.images(dir.resolve(first + Fatbin.SUFFIX).toString());
        for (String image : Fatbin.images()) {
            byte[] expectedFolder = image.equals(first) ? a : image.equals(last) ? b : Fatbin.image(image);
            assertArrayEquals(expectedFolder, fromFolder.get(image), image);
            assertArrayEquals(image.equals(first) ? a : Fatbin.image(image), fromFile.get(image), image);
        }
        Files.write(dir.resolve("dev.fatbin"), a);
        assertThrows(IllegalStateException.class, () -> CudaRuntime.images(dir.toString()));
        assertThrows(IllegalStateException.class, () -> CudaRuntime.images(dir.resolve("missing" + Fatbin.SUFFIX).toString()));
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
