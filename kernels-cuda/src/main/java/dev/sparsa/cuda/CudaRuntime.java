package dev.sparsa.cuda;

/**
 * The process-wide CUDA state of the backend: the device (its primary context retained once) and
 * the loaded kernel module. Opened on first use by {@link #open()}; lives as long as the process
 * (the primary context is shared with other libraries, and kernels may run until exit).
 *
 * @param device the device ({@code -Dsparsa.cuda.device=N} picks one; 0 by default)
 * @param module the fatbin loaded on it
 */
public record CudaRuntime(CudaDevice device, CudaModule module) {

    /** Oldest chip the fatbin carries machine code for (sm_80); newer ones run it or its PTX. */
    public static final int MIN_COMPUTE_CAPABILITY = 80;

    /**
     * Opens the device and loads the kernels.
     *
     * @throws UnsatisfiedLinkError or NoClassDefFoundError where JCuda's natives or the driver library
     *     are missing
     * @throws CudaException when the driver refuses (no device, or a driver too old for the fatbin)
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
            String override = System.getProperty("sparsa.cuda.fatbin");
            byte[] image = override == null ? Fatbin.image() : java.nio.file.Files.readAllBytes(java.nio.file.Path.of(override));
            return new CudaRuntime(device, new CudaModule(device, image));
        } catch (java.io.IOException e) {
            device.close();
            throw new IllegalStateException("sparsa.cuda.fatbin: cannot read " + System.getProperty("sparsa.cuda.fatbin"), e);
        } catch (RuntimeException e) {
            device.close();
            throw e;
        }
    }
}
