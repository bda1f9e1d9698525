package dev.sparsa.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The process-wide CUDA state of the backend: the device (its primary context retained once) and
 * the loaded kernel module. Opened on first use by {@link #open()}; lives as long as the process
 * (the primary context is shared with other libraries, and kernels may run until exit).
 *
 * @param device the device ({@code -Dsparsa.cuda.device=N} picks one; 0 by default)
 * @param module the kernel images loaded on it
 */
public record CudaRuntime(CudaDevice device, CudaModule module) {

    /** Oldest chip the kernel images carry machine code for (sm_80); newer ones run it or their PTX. */
    public static final int MIN_COMPUTE_CAPABILITY = 80;

    /**
     * Opens the device and loads the kernels.
     *
     * @throws UnsatisfiedLinkError or NoClassDefFoundError where JCuda's natives or the driver library
     *     are missing
     * @throws CudaException when the driver refuses (no device, or a driver too old for the kernel images)
     * @throws IllegalStateException when the device is older than sm_80
     */
    public static CudaRuntime open() {
        return open(Integer.getInteger("sparsa.cuda.device", 0));
    }

    /**
     * Opens device {@code ordinal} and loads the kernels on it.
     *
     * @throws IllegalArgumentException if the ordinal is not a device here
     * @see #open()
     */
    public static CudaRuntime open(int ordinal) {
        CudaDevice device = new CudaDevice(ordinal);
        try {
            if (device.computeCapability() < MIN_COMPUTE_CAPABILITY) {
                throw new IllegalStateException(device + " is older than sm_80, the oldest chip Sparsa's kernels target");
            }
            return new CudaRuntime(device, new CudaModule(device, images(System.getProperty("sparsa.cuda.fatbin"))));
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }

    /**
     * Every kernel image by name: the committed ones, except where {@code override} (the property
     * {@code sparsa.cuda.fatbin}, for experiments; null for none) gives another. {@code override} is a
     * file {@code <image>.fatbin}, which replaces the committed image of that name, or a folder, whose
     * {@code <image>.fatbin} files each replace theirs (e.g. {@code kernels-cuda/target/dev} from {@code
     * bench/dev-fatbin.sh}). A replacement serves the kernels the table places in its image, so it must
     * define those that are launched.
     *
     * @throws IllegalStateException if {@code override} cannot be read or names a {@code .fatbin} file
     *     that is not an image of the kernel table
     */
    static Map<String, byte[]> images(String override) {
        Map<String, byte[]> images = new LinkedHashMap<>();
        for (String name : Fatbin.images()) {
            images.put(name, null);
        }
        if (override != null) {
            Path p = Path.of(override);
            try {
                List<Path> files;
                if (Files.isDirectory(p)) {
                    try (Stream<Path> s = Files.list(p)) {
                        files = s.filter(f -> f.getFileName().toString().endsWith(Fatbin.SUFFIX)).sorted().toList();
                    }
                } else {
                    files = List.of(p);
                }
                for (Path f : files) {
                    String file = f.getFileName().toString();
                    String name = file.endsWith(Fatbin.SUFFIX) ? file.substring(0, file.length() - Fatbin.SUFFIX.length()) : file;
                    if (!images.containsKey(name)) {
                        throw new IllegalStateException("sparsa.cuda.fatbin: " + f + " is not named after a kernel image (<image>"
                                + Fatbin.SUFFIX + ", the images being " + Fatbin.images() + ")");
                    }
                    images.put(name, Files.readAllBytes(f));
                }
            } catch (IOException e) {
                throw new IllegalStateException("sparsa.cuda.fatbin: cannot read " + override, e);
            }
        }
        images.replaceAll((name, bytes) -> bytes != null ? bytes : Fatbin.image(name));
        return images;
    }
}
