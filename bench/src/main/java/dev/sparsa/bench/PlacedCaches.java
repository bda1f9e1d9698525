package dev.sparsa.bench;

import dev.sparsa.backend.AttentionBackend;
import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.Device;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * A contiguous and a paged host cache and a step's Q where a backend runs them: the same objects
 * on the host, else copies in the device's memory (storage, page bounds when kept, block tables and
 * lengths as on the host), freed by {@link #close()}.
 *
 * @param flat  the contiguous cache where the backend runs
 * @param paged the paged cache where the backend runs, or null when none was given
 * @param q     Q where the backend runs
 * @param owned the device copies {@link #close()} frees (empty on the host)
 */
public record PlacedCaches(KvCache flat, KvCache paged, Tensor q, List<Tensor> owned) implements AutoCloseable {

    /** The paged cache when {@code isPaged}, else the contiguous one. */
    public KvCache cache(boolean isPaged) {
        return isPaged ? paged : flat;
    }

    /**
     * The caches and Q on {@code device} ({@code paged} may be null).
     *
     * @throws IllegalArgumentException if the backend cannot allocate on the device
     */
    public static PlacedCaches on(AttentionBackend backend, Device device, ContiguousKvCache flat, PagedKvCache paged,
                                  Tensor q) {
        if (device.isHost()) {
            return new PlacedCaches(flat, paged, q, List.of());
        }
        List<Tensor> owned = new ArrayList<>();
        try {
            ContiguousKvCache f = ContiguousKvCache.wrap(copy(backend, device, flat.keyStorage(), owned),
                    copy(backend, device, flat.valueStorage(), owned), flat.lengths());
            PagedKvCache p = null;
            if (paged != null) {
                p = PagedKvCache.wrap(copy(backend, device, paged.keyPages(), owned),
                        copy(backend, device, paged.valuePages(), owned),
                        paged.hasPageBounds() ? copy(backend, device, paged.pageBounds(), owned) : null,
                        paged.pageSize(), paged.batch(), null);
                for (int b = 0; b < paged.batch(); b++) {
                    p.setBlockTable(b, paged.blockTable(b), paged.length(b));
                }
            }
            return new PlacedCaches(f, p, copy(backend, device, q, owned), owned);
        } catch (RuntimeException e) {
            owned.forEach(Tensor::close);
            throw e;
        }
    }

    /**
     * A device copy of a host tensor, in the host tensor's layout where it has one ({@link Tensor#layout()}: an
     * NHD page pool stays NHD), else in BHSD; an e4m3 copy carries the host tensor's scales (its codes are copied
     * as they are, not requantised).
     */
    public static Tensor copy(AttentionBackend backend, Device device, Tensor host, List<Tensor> owned) {
        Tensor t = backend.allocate(device, host.dtype(), host.layout().orElse(Layout.BHSD), host.batch(), host.heads(),
                host.seqLen(), host.dim());
        owned.add(t);
        Tensor dst = host.dtype().isScaled() ? t.withScales(host.scales()) : t;
        Tensor.copy(host, dst);
        return dst;
    }

    @Override
    public void close() {
        owned.forEach(Tensor::close);
    }
}
