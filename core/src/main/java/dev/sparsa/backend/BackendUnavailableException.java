package dev.sparsa.backend;

/** Thrown when a backend is asked to run but is not available here; the message says why. */
public class BackendUnavailableException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    public BackendUnavailableException(String message) {
        super(message);
    }
}
