package dev.sparsa.patterns.topk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.sparsa.patterns.support.Plans;
import dev.sparsa.patterns.support.TopSelect;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * {@link QuestPages#select} (bounds from channel-major page panels, four rows at a time) chooses what
 * the plain loop chooses on every row: per page {@code s += Math.max(qc·min, qc·max)} over the
 * channels in order, in f32. Bounds rounded to few values make exact ties; lengths around the panel
 * and row-group sizes, queries after the keys' start, causal or not.
 */
class QuestPagesPlainLoopTest {

    private static int[][] plain(PlanContext ctx, int pageSize, int pages, float[] q, float[] k) {
        int d = ctx.shape().headDim();
        int nk = ctx.keyLength();
        int np = (nk + pageSize - 1) / pageSize;
        float[] min = new float[np * d];
        float[] max = new float[np * d];
        Arrays.fill(min, Float.POSITIVE_INFINITY);
        Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int key = 0; key < nk; key++) {
            for (int x = 0; x < d; x++) {
                min[key / pageSize * d + x] = Math.min(min[key / pageSize * d + x], k[key * d + x]);
                max[key / pageSize * d + x] = Math.max(max[key / pageSize * d + x], k[key * d + x]);
            }
        }
        int[][] out = new int[ctx.queryLength()][];
        float[] bound = new float[Math.max(1, np)];
        for (int r = 0; r < out.length; r++) {
            long last = Plans.lastVisibleKey(ctx, r);
            if (last < 0) {
                out[r] = new int[0];
                continue;
            }
            int lastPage = (int) (last / pageSize);
            if (lastPage + 1 <= pages) {
                out[r] = IntStream.rangeClosed(0, (int) last).toArray();
                continue;
            }
            for (int pg = 0; pg < lastPage; pg++) {
                float s = 0;
                for (int x = 0; x < d; x++) {
                    float qc = q[r * d + x];
                    s += Math.max(qc * min[pg * d + x], qc * max[pg * d + x]);
                }
                bound[pg] = s;
            }
            int[] chosen = TopSelect.top(bound, lastPage, pages - 1, null);
            IntStream kept = Arrays.stream(chosen).flatMap(pg -> IntStream.range(pg * pageSize, (pg + 1) * pageSize));
            out[r] = IntStream.concat(kept, IntStream.rangeClosed(lastPage * pageSize, (int) last)).toArray();
        }
        return out;
    }

    @Test
    void panelBoundsChooseAsThePlainLoop() {
        SplittableRandom rnd = new SplittableRandom(17);
        for (int c = 0; c < 36; c++) {
            int d = new int[] {8, 24, 128}[c % 3];
            int pageSize = new int[] {4, 16}[c % 2];
            int nq = new int[] {1, 3, 4, 5, 9, 40}[c % 6];
            int nk = nq + rnd.nextInt(0, 700);
            boolean causal = c % 5 != 4;
            PlanContext ctx = PlanContext.of(new AttentionShape(1, 1, 1, nq, nk, d, d),
                    Options.defaults().withCausal(causal).withGeometry(new TileGeometry(64, 64)));
            int budget = pageSize * rnd.nextInt(1, 12);
            float[] q = new float[nq * d];
            float[] k = new float[nk * d];
            for (int i = 0; i < q.length; i++) {
                q[i] = Math.round(rnd.nextGaussian() * 2) / 2f;
            }
            for (int i = 0; i < k.length; i++) {
                k[i] = Math.round(rnd.nextGaussian() * 2) / 2f;
            }
            QuestPages quest = new QuestPages(pageSize, budget);
            int[][] want = plain(ctx, pageSize, budget / pageSize, q, k);
            int[][] got = quest.select(ctx, q, k);
            for (int r = 0; r < nq; r++) {
                assertArrayEquals(want[r], got[r], ctx + " page " + pageSize + " budget " + budget + " row " + r);
            }
        }
    }
}
