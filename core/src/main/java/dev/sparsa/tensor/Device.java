package dev.sparsa.tensor;

/**
 * Where a tensor's memory lives and where a call runs: the host ({@link #CPU}) or one accelerator
 * of a kind ({@code "cuda"}) by ordinal. Backends say which devices they run on ({@code
 * AttentionBackend.runsOn}); a tensor says where it is ({@link Tensor#device()}).
 *
 * @param kind    {@code "cpu"} or an accelerator kind such as {@code "cuda"}; lower case letters
 * @param ordinal the device's index among those of its kind (0 for the host)
 *
 * <p>Throws {@link IllegalArgumentException} if the kind is empty or not lower-case letters, the ordinal is
 *     negative, or the host is given an ordinal other than 0
 */
public record Device(String kind, int ordinal) {
    /** The host: heap arrays and native segments. */
    public static final Device CPU = new Device("cpu", 0);

    public Device {
        if (!lowerCaseLetters(kind)) {
            throw new IllegalArgumentException("device: kind must be lower-case letters such as \"cpu\" or \"cuda\", got "
                    + (kind == null ? "null" : "\"" + kind + "\""));
        }
        if (ordinal < 0 || (kind.equals("cpu") && ordinal != 0)) {
            throw new IllegalArgumentException("device: ordinal must be >= 0 (and 0 for the host), got " + kind + ":"
                    + ordinal);
        }
    }

    /** The first CUDA devices, made once: device checks run on every call of a CUDA backend. */
    private static final Device[] CUDA = {new Device("cuda", 0), new Device("cuda", 1), new Device("cuda", 2),
        new Device("cuda", 3), new Device("cuda", 4), new Device("cuda", 5), new Device("cuda", 6), new Device("cuda", 7)};

    /** CUDA device {@code ordinal}. */
    public static Device cuda(int ordinal) {
        return ordinal >= 0 && ordinal < CUDA.length ? CUDA[ordinal] : new Device("cuda", ordinal);
    }

    /** Whether {@code kind} is one or more of the letters a to z (a loop: a regular expression per call costs microseconds). */
    private static boolean lowerCaseLetters(String kind) {
        if (kind == null || kind.isEmpty()) {
            return false;
        }
        for (int i = 0; i < kind.length(); i++) {
            char c = kind.charAt(i);
            if (c < 'a' || c > 'z') {
                return false;
            }
        }
        return true;
    }

    /**
     * Parses {@code "cpu"}, {@code "cuda"} (ordinal 0) or {@code "cuda:1"}.
     *
     * @throws IllegalArgumentException naming the text when it is none of these forms
     */
    public static Device parse(String text) {
        if (text == null || text.isBlank()) {
            throw new IllegalArgumentException("device: expected \"cpu\", \"cuda\" or \"cuda:N\", got "
                    + (text == null ? "null" : "\"" + text + "\""));
        }
        String t = text.trim().toLowerCase(java.util.Locale.ROOT);
        int colon = t.indexOf(':');
        try {
            return colon < 0 ? new Device(t, 0) : new Device(t.substring(0, colon), Integer.parseInt(t.substring(colon + 1)));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("device: expected \"cpu\", \"cuda\" or \"cuda:N\", got \"" + text + "\"");
        }
    }

    /** True for the host. */
    public boolean isHost() {
        return kind.equals("cpu");
    }

    @Override
    public String toString() {
        return isHost() ? kind : kind + ":" + ordinal;
    }
}
