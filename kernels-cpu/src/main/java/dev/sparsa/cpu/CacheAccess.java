package dev.sparsa.cpu;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;
import dev.sparsa.tensor.Tensor;

/**
 * The tensors a decode call reads from a host cache, for {@link dev.sparsa.spec.Workers#forTensors}:
 * worker threads may read them only when none is confined to one thread's arena.
 */
final class CacheAccess {
    private CacheAccess() {
    }

    /** K and V storage, and Quest's page bounds when the cache keeps them (null entries are ignored). */
    static Tensor[] storage(KvCache cache) {
        return switch (cache) {
            case ContiguousKvCache c -> new Tensor[] {c.keyStorage(), c.valueStorage()};
            case PagedKvCache p -> new Tensor[] {p.keyPages(), p.valuePages(), p.pageBounds()};
        };
    }
}
