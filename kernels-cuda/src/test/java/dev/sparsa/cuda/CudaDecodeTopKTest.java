package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.kv.DecodeSelector;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The host side of top-k's device selection (no GPU needed). */
class CudaDecodeTopKTest {
    @Test
    void theCandidatesAreTheHostSelectorsForEveryLengthRowCountSinksAndWindow() {
        // with more tokens than candidates the host keeps every candidate as one span: the range the device ranks
        for (int length : new int[] {0, 1, 5, 63, 64, 65, 200}) {
            for (int rows : new int[] {1, 3}) {
                for (int sinks : new int[] {0, 2, 70}) {
                    for (int window : new int[] {0, 1, 16, 300}) {
                        if (sinks + window == 0) {
                            continue;
                        }
                        DecodePattern.TopK top = new DecodePattern.TopK(1000, sinks, window);
                        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 1, 1, 256, 8, 8);
                        Tensor k = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, Math.max(1, length), 8);
                        if (length > 0) {
                            cache.append(0, k.narrowSeq(0, length), k.narrowSeq(0, length));
                        }
                        Tensor q = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, rows, 8);
                        DecodeSelection host = DecodeSelector.select(q, cache, top);
                        int[] r = CudaDecodeTopK.candidates(length, rows, top);
                        int[] expected = r[1] > r[0] ? r : new int[0];
                        assertArrayEquals(expected, host.chosenSpans(0, 0), "length " + length + ", rows " + rows
                                + ", " + top.name());
                    }
                }
            }
        }
    }

    @Test
    void theSharedMemoryLimitCoversEveryGroupTheDeviceTakes() {
        // the limit is one attribute per kernel, so it must cover every group a call may bring (a per-call limit was
        // lowered by a smaller group and failed a later, larger one's launch)
        for (int maxShared : new int[] {99 * 1024, 163 * 1024, 227 * 1024}) {
            for (int d : CudaDecode.DIMS) {
                for (int eb : new int[] {1, 2, 4}) {
                    int limit = CudaDecodeTopK.sharedLimit(d, eb, maxShared);
                    assertTrue(CudaDecodeTopK.sharedBytes(CudaDecodeTopK.MAX_VECTOR_FLOATS / d, d, eb) <= 227 * 1024,
                            "every admitted group fits the H100/H200's opt-in shared memory: d " + d + ", " + eb);
                    assertTrue(limit <= maxShared);
                    for (int vectors = 1; vectors * d <= CudaDecodeTopK.MAX_VECTOR_FLOATS; vectors++) {
                        int need = CudaDecodeTopK.sharedBytes(vectors, d, eb);
                        assertTrue(need > maxShared || need <= limit, d + " " + eb + " " + vectors + " " + maxShared);
                    }
                }
            }
        }
    }

    @Test
    void hostTensorsDoNotRunOnTheDevice() {
        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.BF16, 1, 1, 64, 128, 128);
        Tensor q = Tensor.allocate(DType.BF16, Layout.BHSD, 1, 4, 1, 128);
        assertFalse(CudaDecodeTopK.runs(q, cache, 227 * 1024), "a host cache");
    }
}
