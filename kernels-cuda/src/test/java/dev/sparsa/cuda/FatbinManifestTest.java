package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The build's guard against a stale kernel image: the committed fatbin and manifest must describe
 * exactly the sources of src/main/cuda (.cu, .cuh, .def). Needs no nvcc and no GPU. When it fails, run
 * kernels-cuda/build-fatbin.sh and commit its outputs.
 */
class FatbinManifestTest {
    private static final Path SOURCES = Path.of("src/main/cuda");
    private static final String FIX = " — sources and kernel image disagree: run kernels-cuda/build-fatbin.sh (nvcc 13.0) and commit "
            + "src/main/resources/dev/sparsa/cuda/";

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
    void manifestHashesTheCommittedFatbin() {
        assertEquals(Fatbin.manifest().get("fatbin.sha256"), sha256(Fatbin.image()), "fatbin hash" + FIX);
    }

    @Test
    void manifestRecordsCompilerAndTargets() {
        Map<String, String> m = Fatbin.manifest();
        assertTrue(m.getOrDefault("nvcc", "").startsWith("release 13."), "nvcc version: " + m.get("nvcc"));
        assertEquals("sm_80 sm_90a compute_90", m.get("targets"));
    }

    @Test
    void classpathManifestIsTheCommittedFile() throws IOException {
        byte[] onDisk = Files.readAllBytes(Path.of("src/main/resources/dev/sparsa/cuda/sparsa_attention.manifest"));
        byte[] onClasspath;
        try (var in = Fatbin.class.getResourceAsStream(Fatbin.MANIFEST)) {
            onClasspath = in.readAllBytes();
        }
        assertArrayEquals(onDisk, onClasspath);
    }

    static String sha256(byte[] data) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
