package dev.sparsa.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.kv.ContiguousKvCache;
import dev.sparsa.kv.DecodeOptions;
import dev.sparsa.kv.DecodePattern;
import dev.sparsa.kv.DecodeSelection;
import dev.sparsa.reference.ReferenceDecode;
import dev.sparsa.reference.ReferenceResult;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Sinks + window decode against the caches of the authors' code, ported: StreamingLLM's
 * {@code StartRecentKVCache} as its perplexity loop uses it, and DuoAttention's streaming heads. Both
 * keep the first {@code start} (DuoAttention: {@code sink_size}) and the last {@code recent} cached
 * tokens, and a step attends to those plus its own new token before the cache is trimmed, so one-row
 * steps admit what {@code DecodePattern.sinkWindow(start, recent + 1)} admits. The ported caches hold
 * token positions instead of K/V rows; what the authors' attention reads is then a set of positions,
 * which the test compares with the selection's rule and, through the CPU kernel's outputs, with the
 * fp64 oracle over exactly that set. (Both papers also re-index positions inside the cache for RoPE;
 * that changes the keys the model computes, not which cached tokens a step attends to.)
 */
class StreamingDecodePortTest {
    private static final CpuBackend CPU = new CpuBackend(2);
    private static final int KV_HEADS = 2;
    private static final int Q_HEADS = 4;
    private static final int DIM = 32;

    // ---- Ported from github.com/mit-han-lab/streaming-llm, streaming_llm/kv_cache.py, commit
    // 2e5042606d69933d88fbf909bd77907456b9b4dd: StartRecentKVCache.__call__, which
    // examples/eval_long_ppl.py applies after every one-token forward pass (the pass attends to the cache
    // and its own token first). An entry of `past` is the position of the token it holds.
    private static List<Integer> startRecentCall(List<Integer> past, int startSize, int recentSize) {
        int seqLen = past.size();
        if (seqLen <= startSize + recentSize) {
            return past;
        }
        // torch.cat([k_slice(k, 0, start_size), k_slice(k, seq_len - recent_size, seq_len)])
        List<Integer> kept = new ArrayList<>(past.subList(0, startSize));
        kept.addAll(past.subList(seqLen - recentSize, seqLen));
        return kept;
    }

    // ---- Ported from github.com/mit-han-lab/duo-attention, duo_attn/patch/llama.py, commit
    // fe93c314ae87306ef6629dc16713250b4718ffe7: llama_duo_attention_forward_one_way_reordered for a streaming
    // head. The step concatenates the cached positions and its q_len new ones, attends with
    // flash_attn_func(causal=True) (q_len < kv_len: the causal mask aligned bottom-right), then keeps
    // sink_size + recent_size of them (the recent ones copied behind the sinks, the rest cut off).
    private record DuoStep(List<List<Integer>> attendedByRow, List<Integer> cacheAfter) {
    }

    private static DuoStep duoStreamingStep(List<Integer> past, int firstNew, int qLen, int sinkSize, int recentSize) {
        List<Integer> states = new ArrayList<>(past);
        for (int i = 0; i < qLen; i++) {
            states.add(firstNew + i);
        }
        List<List<Integer>> attended = new ArrayList<>();
        for (int i = 0; i < qLen; i++) {
            attended.add(List.copyOf(states.subList(0, states.size() - qLen + i + 1)));
        }
        if (states.size() > recentSize + sinkSize) {
            // recent = states[:, -recent_size:].clone(); states[:, sink:sink + recent].copy_(recent);
            // states = states[:, :sink + recent]
            List<Integer> recent = new ArrayList<>(states.subList(states.size() - recentSize, states.size()));
            for (int i = 0; i < recentSize; i++) {
                states.set(sinkSize + i, recent.get(i));
            }
            states = new ArrayList<>(states.subList(0, sinkSize + recentSize));
        }
        return new DuoStep(attended, states);
    }

    /** One random row per KV head: {@code [1, kvHeads, 1, dim]}. */
    private static Tensor rows(SplittableRandom rnd, int heads) {
        return Problems.random(rnd, DType.F32, Layout.BHSD, 1, heads, 1, DIM, 2.0);
    }

    /** A selection of exactly the given positions per KV head (ascending), made at {@code length}. */
    private static DecodeSelection explicit(List<List<Integer>> keysByHead, int length) {
        DecodeSelection.Builder b = DecodeSelection.builder(1, KV_HEADS, new int[] {length});
        for (int g = 0; g < KV_HEADS; g++) {
            int[] keys = keysByHead.get(g).stream().mapToInt(Integer::intValue).sorted().toArray();
            b.keys(0, g, keys, 0, keys.length);
        }
        return b.build();
    }

    /**
     * The CPU kernel's decode of {@code q} under {@code sel} against the fp64 oracle over exactly the
     * keys given per KV head, at the cache's length; returns that oracle.
     */
    private static ReferenceResult assertDecodesTheKeys(Tensor q, ContiguousKvCache cache, DecodeSelection sel,
                                                        List<List<Integer>> keysByHead, String what) {
        ReferenceResult ref = ReferenceDecode.decode(q, cache, explicit(keysByHead, cache.length(0)),
                DecodeOptions.defaults().run());
        DecodeFixtures.Run run = DecodeFixtures.decode(CPU, q, cache, sel, DecodeOptions.defaults(), DType.F32);
        assertTrue(ref.maxRelativeError(run.out()) <= DecodeFixtures.tolerance(DType.F32),
                what + ": " + ref.maxRelativeError(run.out()));
        assertTrue(ref.maxLseError(run.lse()) <= DecodeFixtures.lseTolerance(DType.F32),
                what + " lse: " + ref.maxLseError(run.lse()));
        return ref;
    }

    /** Whether {@code sel} admits exactly {@code keys} for the one row at position {@code length − 1}. */
    private static boolean admitsExactly(DecodeSelection sel, int g, int length, List<Integer> keys) {
        for (int k = 0; k < length; k++) {
            if (sel.admits(0, g, length, length - 1, k) != keys.contains(k)) {
                return false;
            }
        }
        return true;
    }

    /**
     * Token by token, StreamingLLM's cache and {@code sinkWindow(start, recent + 1)} admit the same keys
     * at every step, and the CPU kernel's output and LSE over the cache match the fp64 oracle over the
     * keys the ported cache holds. {@code sinkWindow(start, recent)} differs from it (one key fewer
     * once the cache is full), so the comparison can tell a window off by one.
     */
    @Test
    void sinkWindowOfRecentPlusOneAttendsToWhatStreamingLlmsCacheHolds() {
        int steps = 64;
        for (int[] sizes : new int[][] {{4, 8}, {1, 16}, {0, 5}, {4, 1}}) {
            int start = sizes[0];
            int recent = sizes[1];
            SplittableRandom rnd = new SplittableRandom(1207 + 31L * start + recent);
            ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 1, KV_HEADS, steps, DIM, DIM);
            DecodePattern pattern = DecodePattern.sinkWindow(start, recent + 1);
            DecodePattern offByOne = DecodePattern.sinkWindow(start, recent);
            List<Integer> past = new ArrayList<>();
            int offByOneDiffers = 0;
            double offByOneWorst = 0;
            for (int t = 0; t < steps; t++) {
                cache.appendStep(rows(rnd, KV_HEADS), rows(rnd, KV_HEADS));
                Tensor q = Problems.random(rnd, DType.F32, Layout.BHSD, 1, Q_HEADS, 1, DIM, 2.0);
                List<Integer> attended = new ArrayList<>(past);
                attended.add(t);
                past = startRecentCall(attended, start, recent);

                String what = "start " + start + " recent " + recent + " step " + t;
                DecodeSelection sel = CPU.select(q, cache, pattern, DecodeOptions.defaults());
                DecodeSelection shorter = CPU.select(q, cache, offByOne, DecodeOptions.defaults());
                for (int g = 0; g < KV_HEADS; g++) {
                    assertTrue(admitsExactly(sel, g, t + 1, attended), what + " kv head " + g + ": " + attended);
                    offByOneDiffers += admitsExactly(shorter, g, t + 1, attended) ? 0 : 1;
                }
                ReferenceResult ref = assertDecodesTheKeys(q, cache, sel, List.of(attended, attended), what);
                offByOneWorst = Math.max(offByOneWorst, ref.maxRelativeError(
                        DecodeFixtures.decode(CPU, q, cache, shorter, DecodeOptions.defaults(), DType.F32).out()));
            }
            // once the cache holds start + recent tokens, every later step drops one key the port keeps
            assertEquals(KV_HEADS * (steps - start - recent), offByOneDiffers, "start " + start + " recent " + recent);
            assertTrue(offByOneWorst > 1e-3, "a window one key short is visible in the outputs: " + offByOneWorst);
        }
    }

    /**
     * DuoAttention's mix, token by token: KV head 0 a retrieval head (full cache), KV head 1 a streaming
     * head (its ported cache of sinks and recent tokens). {@code perKvHead(dense, sinkWindow(sink,
     * recent + 1))} admits what each head attends to, and the CPU kernel matches the oracle over those keys.
     */
    @Test
    void perKvHeadMixAttendsToWhatDuoAttentionsHeadsAttendTo() {
        int steps = 70;
        int sink = 4;
        int recent = 16;
        SplittableRandom rnd = new SplittableRandom(71207);
        ContiguousKvCache cache = ContiguousKvCache.allocate(DType.F32, 1, KV_HEADS, steps, DIM, DIM);
        DecodePattern mix = DecodePattern.perKvHead(
                List.of(DecodePattern.dense(), DecodePattern.sinkWindow(sink, recent + 1)));
        List<Integer> streamingCache = new ArrayList<>();
        List<Integer> fullCache = new ArrayList<>();
        for (int t = 0; t < steps; t++) {
            cache.appendStep(rows(rnd, KV_HEADS), rows(rnd, KV_HEADS));
            Tensor q = Problems.random(rnd, DType.F32, Layout.BHSD, 1, Q_HEADS, 1, DIM, 2.0);
            fullCache.add(t);
            DuoStep step = duoStreamingStep(streamingCache, t, 1, sink, recent);
            streamingCache = step.cacheAfter();
            List<Integer> streaming = step.attendedByRow().get(0);

            String what = "step " + t;
            DecodeSelection sel = CPU.select(q, cache, mix, DecodeOptions.defaults());
            assertTrue(admitsExactly(sel, 0, t + 1, fullCache), what + " retrieval head");
            assertTrue(admitsExactly(sel, 1, t + 1, streaming), what + " streaming head: " + streaming);
            assertDecodesTheKeys(q, cache, sel, List.of(fullCache, streaming), what);
        }
        assertEquals(sink + recent, streamingCache.size());
    }

    /**
     * A step of several rows (speculative drafts): DuoAttention's streaming head lets every row of the
     * step see the last {@code recent} tokens before the step, so row {@code i} of {@code r} sees a window
     * of {@code recent + i + 1} keys. {@code sinkWindow(sink, recent + r)} admits exactly that for the
     * last row, and {@code r − 1 − i} older keys more for row {@code i}; no single window equals it.
     */
    @Test
    void severalRowsOfAStreamingHeadAreTheLastRowsWindowMinusItsOldestKeys() {
        int sink = 4;
        int recent = 8;
        int past = 40;
        List<Integer> cached = new ArrayList<>();
        for (int t = 0; t < past; t++) {
            cached = duoStreamingStep(cached, t, 1, sink, recent).cacheAfter();
        }
        for (int r : new int[] {1, 2, 5}) {
            DuoStep step = duoStreamingStep(cached, past, r, sink, recent);
            int length = past + r;
            DecodeSelection sel = DecodeSelection.builder(1, 1, new int[] {length})
                    .forced(0, 0, sink, recent + r).build();
            for (int i = 0; i < r; i++) {
                List<Integer> port = step.attendedByRow().get(i);
                List<Integer> extra = new ArrayList<>();
                for (int k = 0; k < length; k++) {
                    boolean ours = sel.admits(0, 0, length, past + i, k);
                    assertTrue(ours || !port.contains(k), "rows " + r + " row " + i + " key " + k + " is the port's");
                    if (ours && !port.contains(k)) {
                        extra.add(k);
                    }
                }
                List<Integer> expectedExtra = new ArrayList<>();
                for (int k = past - recent - (r - 1 - i); k < past - recent; k++) {
                    expectedExtra.add(k);
                }
                assertEquals(expectedExtra, extra, "rows " + r + " row " + i);
            }
        }
    }
}
