package dev.sparsa.patterns;

import static dev.sparsa.patterns.Definitions.assertTokenSet;

import dev.sparsa.plan.PlanContext;
import org.junit.jupiter.api.Test;

/**
 * The A-shape (sinks + sliding window) against DuoAttention's streaming mask, ported: the mask its
 * streaming heads are trained with and, in its SDPA and xformers paths, prefilled with. A mask of
 * {@code sink_size} and {@code recent_size} is {@code Patterns.aShape(recent_size, sink_size)} on a
 * causal square problem. (In decode, a streaming head sees one key more: docs/decode.md,
 * StreamingDecodePortTest.)
 */
class StreamingMaskPortTest {

    // Ported from github.com/mit-han-lab/duo-attention, duo_attn/patch/streaming_attn.py, commit
    // fe93c314ae87306ef6629dc16713250b4718ffe7: generate_streaming_mask(seq_len, sink_size, recent_size), as
    // streaming_attn_sdpa slices it (mask[:, :, :seq_len, :seq_len]). The Python's sink_mask aliases `ones`,
    // but both triu masks are taken before it is written, so they see all ones.
    private static boolean[][] generateStreamingMask(int seqLen, int sinkSize, int recentSize) {
        int rounded = (seqLen + 7) / 8 * 8; // round seq_len to the nearest multiple of 8
        boolean[][] mask = new boolean[seqLen][seqLen];
        for (int i = 0; i < rounded; i++) {
            for (int j = 0; j < rounded; j++) {
                boolean causal = !(j - i >= 1);            // ~torch.triu(ones, diagonal=1)
                boolean recent = j - i >= -recentSize + 1; // torch.triu(ones, diagonal=-recent_size + 1)
                boolean sink = j < sinkSize;               // sink_mask[:, sink_size:] = False
                if (i < seqLen && j < seqLen) {
                    mask[i][j] = (recent || sink) && causal;
                }
            }
        }
        return mask;
    }

    @Test
    void aShapeIsDuoAttentionsStreamingMask() {
        int[][] cases = {{100, 4, 16}, {77, 1, 8}, {64, 0, 1}, {130, 16, 64}, {33, 64, 8}, {9, 2, 100}};
        int[][] tiles = {{16, 16}, {8, 24}, {64, 32}};
        for (int[] c : cases) {
            int n = c[0], sink = c[1], recent = c[2];
            boolean[][] mask = generateStreamingMask(n, sink, recent);
            for (int[] t : tiles) {
                PlanContext ctx = Definitions.ctx(1, 2, 1, n, n, 16, true, t[0], t[1]);
                assertTokenSet(Patterns.aShape(recent, sink).plan(ctx), (b, h, r, k) -> mask[r][k],
                        "aShape(" + recent + ", " + sink + ") against generate_streaming_mask(" + n + ", " + sink + ", "
                                + recent + ")");
            }
        }
    }
}
