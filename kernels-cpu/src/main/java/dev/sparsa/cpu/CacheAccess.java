package dev.sparsa.cpu;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.KvCache;
import dev.sparsa.kv.PagedKvCache;

/** Whether worker threads may read a host cache's storage (a confined arena's segments may not). */
final class CacheAccess {
    private CacheAccess() {
    }

    static boolean shared(KvCache cache) {
        return switch (cache) {
            case ContiguousKvCache c -> CpuBackend.sharedAccess(c.keyStorage()) && CpuBackend.sharedAccess(c.valueStorage());
            case PagedKvCache p -> CpuBackend.sharedAccess(p.keyPages()) && CpuBackend.sharedAccess(p.valuePages())
                    && (p.pageBounds() == null || CpuBackend.sharedAccess(p.pageBounds()));
        };
    }
}
