package dev.sparsa.attention;

import dev.sparsa.tensor.Device;
import java.util.List;

/**
 * How one attention call is spread over several devices ({@link Attention#forwardSharded}).
 *
 * <ul>
 *   <li>{@link Mode#HEADS}: each device runs a contiguous range of whole KV groups (tensor-parallel
 *       style); the output rows come back as they are, no merging.
 *   <li>{@link Mode#KEYS}: each device runs every query row over a block-aligned range of keys,
 *       cut so that the ranges carry about the same visited pairs; the partial outputs merge
 *       exactly through their LSEs (context-parallel style). Results equal the one-device result
 *       up to f32 reassociation.
 * </ul>
 *
 * A device may appear more than once (one device treated as several, each shard on its own
 * stream), which is how the split-and-merge road is tested where only one device exists.
 *
 * <p>Throws {@link IllegalArgumentException} if the mode or the device list is null or empty, or
 * holds null.
 *
 * @param mode    how the work is split
 * @param devices where the shards run, in shard order; at least one
 */
public record Sharding(Mode mode, List<Device> devices) {

    /** The two ways to split. */
    public enum Mode {
        /** Whole KV groups of query heads per device. */
        HEADS,
        /** A key range per device, merged through the LSE. */
        KEYS
    }

    public Sharding {
        if (mode == null || devices == null || devices.isEmpty() || devices.stream().anyMatch(java.util.Objects::isNull)) {
            throw new IllegalArgumentException("sharding: need a mode and at least one device, got " + mode + " " + devices);
        }
        devices = List.copyOf(devices);
    }

    /** Heads sharded over {@code devices}. */
    public static Sharding heads(Device... devices) {
        return new Sharding(Mode.HEADS, List.of(devices));
    }

    /** The key range split over {@code devices}, merged through the LSE. */
    public static Sharding keys(Device... devices) {
        return new Sharding(Mode.KEYS, List.of(devices));
    }
}
