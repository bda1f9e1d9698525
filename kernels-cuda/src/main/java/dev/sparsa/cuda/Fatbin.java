package dev.sparsa.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The committed kernel image ({@code dev/sparsa/cuda/sparsa_attention.fatbin}: SASS for sm_80 and
 * sm_90a (H100/H200; the wgmma kernels run only there), PTX for newer chips, built by {@code kernels-cuda/build-fatbin.sh} with nvcc 13.0) and its
 * manifest (sha256 of the fatbin and of each .cu/.cuh source, the nvcc version). Fatbins from nvcc
 * 13 need a driver of the CUDA 13 generation (R580 or newer).
 */
public final class Fatbin {
    /** Classpath resource of the kernel image. */
    public static final String IMAGE = "/dev/sparsa/cuda/sparsa_attention.fatbin";
    /** Classpath resource of its manifest. */
    public static final String MANIFEST = "/dev/sparsa/cuda/sparsa_attention.manifest";

    private Fatbin() {
    }

    /**
     * The image's bytes.
     *
     * @throws IllegalStateException if the resource is missing from the jar
     */
    public static byte[] image() {
        return read(IMAGE);
    }

    /** The manifest's {@code key=value} lines in file order (comments skipped). */
    public static Map<String, String> manifest() {
        String text = new String(read(MANIFEST), StandardCharsets.UTF_8);
        Map<String, String> m = new LinkedHashMap<>();
        for (String line : text.split("\n")) {
            if (line.isBlank() || line.startsWith("#")) {
                continue;
            }
            int eq = line.indexOf('=');
            if (eq > 0) {
                m.put(line.substring(0, eq).trim(), line.substring(eq + 1).trim());
            }
        }
        return m;
    }

    private static byte[] read(String resource) {
        try (InputStream in = Fatbin.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("resource " + resource + " is missing from the class path; rebuild it with "
                        + "kernels-cuda/build-fatbin.sh");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + resource, e);
        }
    }
}
