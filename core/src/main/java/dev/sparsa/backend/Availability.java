package dev.sparsa.backend;

/**
 * Whether a backend can run here, and why not.
 *
 * @param available true when the backend can run plans on this machine
 * @param reason    a one-line explanation (what was found, or what is missing and how to fix it)
 */
public record Availability(boolean available, String reason) {
    public static Availability yes(String what) {
        return new Availability(true, what);
    }

    public static Availability no(String why) {
        return new Availability(false, why);
    }
}
