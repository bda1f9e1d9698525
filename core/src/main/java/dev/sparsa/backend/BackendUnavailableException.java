package dev.sparsa.backend;

/**
 * Thrown when a backend is asked to run but is not available here; the message says why, and when
 * no backend is on the class path at all it names the artifact to add ({@link #ADD_A_BACKEND}).
 */
public class BackendUnavailableException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /** What the message says when the class path holds no backend at all. */
    public static final String ADD_A_BACKEND = "none is on the class path: add the dependency dev.sparsa:sparsa"
            + " (core, patterns and the CPU backend), or dev.sparsa:sparsa-kernels-cpu next to sparsa-core";

    /**
     * An exception with the given reason.
     *
     * @param message why no backend can run the call
     */
    public BackendUnavailableException(String message) {
        super(message);
    }
}
