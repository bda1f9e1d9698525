package dev.sparsa.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The committed kernel images and their manifest. There is one image per translation unit of
 * {@code kernels-cuda/src/main/cuda} ({@link #images()}, e.g. {@code sparsa_prefill_mma_bf16}), the
 * resource {@code dev/sparsa/cuda/<image>.fatbin}: SASS for sm_80 and sm_90a (H100/H200; the wgmma
 * kernels run only there), PTX for newer chips, built by {@code kernels-cuda/build-fatbin.sh} with
 * nvcc 13.0. The manifest records the nvcc version, per image its sha256, the sources it was compiled
 * from and a digest of those sources and of its rows of the kernel table, and the sha256 of each
 * .cu/.cuh/.def source. Fatbins from nvcc 13 need a driver of the CUDA 13 generation (R580 or newer).
 */
public final class Fatbin {
    /** Classpath folder of the kernel images. */
    public static final String FOLDER = "/dev/sparsa/cuda/";
    /** File name suffix of a kernel image. */
    public static final String SUFFIX = ".fatbin";
    /** Classpath resource of the manifest. */
    public static final String MANIFEST = FOLDER + "sparsa_kernels.manifest";

    private Fatbin() {
    }

    /** The images' names (each a translation unit's), in the order of the generated kernel table. */
    public static List<String> images() {
        return KernelTable.IMAGES;
    }

    /**
     * The bytes of the image {@code name}.
     *
     * @throws IllegalArgumentException if {@code name} is not one of {@link #images()}
     * @throws IllegalStateException if the resource is missing from the jar
     */
    public static byte[] image(String name) {
        if (!KernelTable.IMAGES.contains(name)) {
            throw new IllegalArgumentException("no kernel image " + name + "; the images are " + KernelTable.IMAGES);
        }
        return read(FOLDER + name + SUFFIX);
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
