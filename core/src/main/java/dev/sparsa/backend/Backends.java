package dev.sparsa.backend;

import dev.sparsa.kv.KvCache;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Device;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import java.util.logging.Logger;

/**
 * The registry of kernel backends found through {@link ServiceLoader} ({@code
 * META-INF/services/dev.sparsa.backend.AttentionBackend}). Loaded once; every lookup is cheap.
 */
public final class Backends {
    private static final Logger LOG = Logger.getLogger(Backends.class.getName());

    private Backends() {
    }

    private static final class Holder {
        static final List<AttentionBackend> ALL = load();

        private static List<AttentionBackend> load() {
            List<AttentionBackend> found = new ArrayList<>();
            for (AttentionBackend b : ServiceLoader.load(AttentionBackend.class, Backends.class.getClassLoader())) {
                found.add(b);
            }
            found.sort(Comparator.comparingInt(AttentionBackend::priority).reversed()
                    .thenComparing(AttentionBackend::name));
            return List.copyOf(found);
        }
    }

    /** Every backend on the class path, available or not, highest priority first. */
    public static List<AttentionBackend> all() {
        return Holder.ALL;
    }

    /** The backends available here, highest priority first. */
    public static List<AttentionBackend> available() {
        return all().stream().filter(b -> b.availability().available()).toList();
    }

    /**
     * The backend with this name.
     *
     * @throws IllegalArgumentException naming the backends that exist if none has this name
     */
    public static AttentionBackend get(String name) {
        for (AttentionBackend b : all()) {
            if (b.name().equalsIgnoreCase(name)) {
                return b;
            }
        }
        throw new IllegalArgumentException("backend: no backend named '" + name + "'; found "
                + all().stream().map(AttentionBackend::name).toList());
    }

    /**
     * The available backend of highest priority that runs this shape, dtype and geometry (its {@link
     * AttentionBackend#refusal} is null), so that a GPU backend that does not cover, say, head dim 32
     * leaves the call to the CPU.
     *
     * @throws BackendUnavailableException listing every backend and why it cannot run the call
     */
    public static AttentionBackend preferred(AttentionShape shape, DType dtype, TileGeometry geometry) {
        return preferred(null, shape, dtype, geometry);
    }

    /**
     * The available backend of highest priority that runs on {@code device} (any device when null)
     * and takes this shape and dtype in {@code geometry}, or, when {@code geometry} is null, in the
     * geometry it proposes itself.
     *
     * @throws BackendUnavailableException listing every backend and why it cannot run the call, and
     *     naming the artifact to add when no backend is on the class path
     */
    public static AttentionBackend preferred(Device device, AttentionShape shape, DType dtype, TileGeometry geometry) {
        return preferred(device, shape, dtype, dtype, geometry);
    }

    /**
     * As {@link #preferred(Device, AttentionShape, DType, TileGeometry)} for Q of dtype {@code q} and K
     * and V of dtype {@code kv} (they differ only for e4m3 K and V): each backend is asked with {@link
     * AttentionBackend#refusal(AttentionShape, DType, DType, TileGeometry)}.
     *
     * @throws BackendUnavailableException listing every backend and why it cannot run the call
     */
    public static AttentionBackend preferred(Device device, AttentionShape shape, DType q, DType kv,
                                             TileGeometry geometry) {
        DType dtype = ForwardArguments.inputType(q, kv);
        StringBuilder why = new StringBuilder("no attention backend runs " + shape + " " + (q == kv ? q : q + "/" + kv) + " "
                + (geometry == null ? "(any geometry)" : geometry) + (device == null ? "" : " on " + device));
        if (all().isEmpty()) {
            why.append(": ").append(BackendUnavailableException.ADD_A_BACKEND);
        }
        for (AttentionBackend b : all()) {
            if (!b.availability().available()) {
                why.append("; ").append(b.name()).append(": ").append(b.availability().reason());
                continue;
            }
            if (device != null && !b.runsOn(device)) {
                why.append("; ").append(b.name()).append(": does not run on ").append(device);
                continue;
            }
            TileGeometry g = geometry != null ? geometry : b.proposedGeometry(shape, dtype);
            String refusal = b.refusal(shape, q, kv, g);
            if (refusal == null) {
                return b;
            }
            why.append("; ").append(b.name()).append(": ").append(refusal);
        }
        throw new BackendUnavailableException(why.toString());
    }

    /**
     * The available backend of highest priority that runs on the cache's device and decodes {@code
     * queryRows} rows on it (its {@link AttentionBackend#decodeRefusal(DecodeShape)} of the cache's
     * {@link DecodeShape#of shape} is null).
     *
     * @throws BackendUnavailableException listing every backend and why it cannot run the call
     * @throws IllegalArgumentException if {@code queryRows} is outside {@code [1, }{@value
     *     DecodeArguments#MAX_QUERY_ROWS}{@code ]}
     */
    public static AttentionBackend preferredForDecode(KvCache cache, int queryRows) {
        DecodeShape shape = DecodeShape.of(cache, queryRows);
        StringBuilder why = new StringBuilder("no attention backend decodes " + queryRows + " row(s) on " + cache);
        if (all().isEmpty()) {
            why.append(": none is on the class path (add the dependency dev.sparsa:sparsa-kernels-cpu)");
        }
        for (AttentionBackend b : all()) {
            if (!b.availability().available()) {
                why.append("; ").append(b.name()).append(": ").append(b.availability().reason());
                continue;
            }
            if (!b.runsOn(cache.device())) {
                why.append("; ").append(b.name()).append(": does not run on ").append(cache.device());
                continue;
            }
            String refusal = b.decodeRefusal(shape);
            if (refusal == null) {
                return b;
            }
            why.append("; ").append(b.name()).append(": ").append(refusal);
        }
        throw new BackendUnavailableException(why.toString());
    }

    /**
     * The available backend of highest priority.
     *
     * @throws BackendUnavailableException listing every backend and why it is unavailable
     */
    public static AttentionBackend preferred() {
        for (AttentionBackend b : all()) {
            if (b.availability().available()) {
                return b;
            }
        }
        StringBuilder why = new StringBuilder("no attention backend is available");
        if (all().isEmpty()) {
            why.append(": ").append(BackendUnavailableException.ADD_A_BACKEND);
        }
        for (AttentionBackend b : all()) {
            why.append("; ").append(b.name()).append(": ").append(b.availability().reason());
        }
        LOG.warning(why.toString());
        throw new BackendUnavailableException(why.toString());
    }
}
