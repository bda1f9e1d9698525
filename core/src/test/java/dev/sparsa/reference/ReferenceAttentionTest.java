package dev.sparsa.reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparsa.pattern.Dense;
import dev.sparsa.plan.HeadLayout;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.plan.SparsePlan;
import dev.sparsa.spec.AttentionShape;
import dev.sparsa.spec.Options;
import dev.sparsa.spec.TileGeometry;
import dev.sparsa.tensor.DType;
import dev.sparsa.tensor.Layout;
import dev.sparsa.tensor.LseMerge;
import dev.sparsa.tensor.Tensor;
import dev.sparsa.testing.Problems;
import org.junit.jupiter.api.Test;

class ReferenceAttentionTest {

    @Test
    void handComputedTwoKeyRow() {
        // q·k = 1 and 0 at scale 1: softmax weights e/(e+1), 1/(e+1)
        Tensor q = Tensor.of(new float[] {1, 0, 0, 0, 0, 0, 0, 0}, 1, 1, 1, 8);
        Tensor k = Tensor.of(new float[] {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 1, 1, 2, 8);
        Tensor v = Tensor.of(new float[] {2, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0}, 1, 1, 2, 8);
        ReferenceResult r = ReferenceAttention.dense(q, k, v, Options.defaults().withScale(1.0), null);
        double e = Math.E;
        assertEquals(2 * e / (e + 1), r.out(0, 0, 0, 0), 1e-15);
        assertEquals(4 / (e + 1), r.out(0, 0, 0, 1), 1e-15);
        assertEquals(Math.log(e + 1), r.lse(0, 0, 0), 1e-15);
    }

    @Test
    void scoreMagnitudeIsTheLargestAbsoluteProductSumOverAdmittedKeysAndScalesTheE4m3LseBound() {
        // q = (1, −2), keys (3, 1) and (−1, 4): Σ|q_d k_d| = 3 + 2 = 5 and 1 + 8 = 9; scale 0.5 → A = 4.5;
        // causal with offset 0 admits key 0 only on row 0 → A = 2.5 there
        Tensor q = Tensor.of(new float[] {1, -2, 1, -2}, 1, 1, 2, 2);
        Tensor k = Tensor.of(new float[] {3, 1, -1, 4}, 1, 1, 2, 2);
        Tensor v = Tensor.of(new float[] {1, 0, 0, 1}, 1, 1, 2, 2);
        Options o = Options.defaults().withScale(0.5).withCausal(true).withQueryOffset(0);
        ReferenceResult r = ReferenceAttention.dense(q, k, v, o, null);
        assertEquals(2.5, r.scoreMagnitude(0, 0, 0), 1e-15);
        assertEquals(4.5, r.scoreMagnitude(0, 0, 1), 1e-15);
        // a row's LSE off by 0.012: over bf16's 1e-2, within e4m3's 1e-2 + 4.5 / 2048
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 2, 1);
        lse.set(0, 0, 0, 0, (float) r.lse(0, 0, 0));
        lse.set(0, 0, 1, 0, (float) (r.lse(0, 0, 1) + 0.012));
        assertTrue(r.maxLseErrorRatio(lse, DType.BF16) > 1);
        assertEquals(0.012 / (1e-2 + 4.5 / 2048), r.maxLseErrorRatio(lse, DType.E4M3), 1e-4); // the LSE is f32
        assertEquals(Tolerance.lse(DType.BF16), Tolerance.lse(DType.BF16, 1000));
        // an empty row must stay −∞
        ReferenceResult empty = ReferenceAttention.dense(q, k, v, o, (b, h, row, key) -> false);
        assertEquals(0, empty.scoreMagnitude(0, 0, 1));
        assertEquals(Double.POSITIVE_INFINITY, empty.maxLseErrorRatio(lse, DType.E4M3));
    }

    @Test
    void planOracleOfDenseEqualsDenseOracleWithGqaAndOffsets() {
        AttentionShape s = new AttentionShape(2, 4, 2, 13, 29, 16, 24);
        Problems.Qkv x = Problems.qkv(7, s, DType.BF16, Layout.BSHD);
        for (boolean causal : new boolean[] {false, true}) {
            Options o = Options.defaults().withCausal(causal).withQueryOffset(causal ? 5 : null)
                    .withGeometry(new TileGeometry(8, 8)).withSoftCap(causal ? 3f : 0f);
            SparsePlan p = Dense.INSTANCE.plan(PlanContext.of(s, o));
            ReferenceResult a = ReferenceAttention.plan(p, x.q(), x.k(), x.v(), o);
            ReferenceResult b = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
            assertEquals(0, ReferenceResult.maxRelativeError(a, b), 1e-15);
            assertEquals(1.0, ReferenceResult.meanRecall(a, b), 1e-12);
            // causal with offset 5: row 0 sees keys 0..5 only, so its LSE differs from the unmasked one
            if (causal) {
                assertTrue(a.lse(0, 0, 0) > Double.NEGATIVE_INFINITY);
            }
        }
    }

    @Test
    void logWeightActsAsKeyMultiplicity() {
        // a key with log-weight log 2 counts as that key present twice
        AttentionShape s = AttentionShape.of(1, 1, 1, 3, 8);
        Problems.Qkv x = Problems.qkv(3, s, DType.F32, Layout.BHSD);
        PlanContext c = PlanContext.of(s, Options.defaults().withGeometry(new TileGeometry(8, 8)));
        HeadLayout l = HeadLayout.builder(c, c.basePredicate()).tile(0, 1).gather(0).gather(1, (float) Math.log(2)).end().build();
        ReferenceResult r = ReferenceAttention.plan(SparsePlan.uniform(c, l, "w"), x.q(), x.k(), x.v(), Options.defaults());
        double scale = 1 / Math.sqrt(8);
        double s0 = 0, s1 = 0;
        for (int d = 0; d < 8; d++) {
            s0 += x.q().get(0, 0, 0, d) * x.k().get(0, 0, 0, d);
            s1 += x.q().get(0, 0, 0, d) * x.k().get(0, 0, 1, d);
        }
        double w0 = Math.exp(scale * s0);
        double w1 = 2 * Math.exp(scale * s1);
        double want = (w0 * x.v().get(0, 0, 0, 3) + w1 * x.v().get(0, 0, 1, 3)) / (w0 + w1);
        assertEquals(want, r.out(0, 0, 0, 3), 1e-6); // the weight is stored as f32
        assertEquals(Math.log(w0 + w1), r.lse(0, 0, 0), 1e-6);
    }

    @Test
    void emptyRowsGiveZeroAndMinusInfinity() {
        AttentionShape s = AttentionShape.of(1, 1, 4, 6, 8);
        Problems.Qkv x = Problems.qkv(5, s, DType.F16, Layout.BHSD);
        Options o = Options.causalMask().withQueryOffset(-2); // rows 0 and 1 sit before key 0
        ReferenceResult r = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
        assertEquals(Double.NEGATIVE_INFINITY, r.lse(0, 0, 0));
        assertEquals(Double.NEGATIVE_INFINITY, r.lse(0, 0, 1));
        assertEquals(0.0, r.out(0, 0, 1, 5));
        assertTrue(Double.isFinite(r.lse(0, 0, 2)));
        Tensor zeros = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 4, 8);
        Tensor lse = Tensor.allocate(DType.F32, Layout.BHSD, 1, 1, 4, 1);
        ReferenceResult firstTwo = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null, new int[] {0, 1});
        assertEquals(0.0, firstTwo.maxRelativeError(zeros));
        assertEquals(Double.POSITIVE_INFINITY, firstTwo.maxLseError(lse)); // 0 is not -inf
    }

    @Test
    void lseMergeOfDisjointHalvesIsExact() {
        AttentionShape s = AttentionShape.of(1, 2, 5, 16, 8);
        Problems.Qkv x = Problems.qkv(11, s, DType.F32, Layout.BHSD);
        Options o = Options.defaults();
        ReferenceResult full = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, null);
        ReferenceResult lo = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, (b, h, q, k) -> k < 7);
        ReferenceResult hi = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, (b, h, q, k) -> k >= 7 && q != 2);
        ReferenceResult none = ReferenceAttention.dense(x.q(), x.k(), x.v(), o, (b, h, q, k) -> false);
        for (int h = 0; h < 2; h++) {
            for (int row = 0; row < 5; row++) {
                float[] a = new float[8];
                float[] b = new float[8];
                for (int d = 0; d < 8; d++) {
                    a[d] = (float) lo.out(0, h, row, d);
                    b[d] = (float) hi.out(0, h, row, d);
                }
                float l = LseMerge.mergeRow(a, 0, (float) lo.lse(0, h, row), b, 0, (float) hi.lse(0, h, row), 8);
                ReferenceResult want = row == 2 ? lo : full;
                assertEquals(want.lse(0, h, row), l, 1e-5);
                for (int d = 0; d < 8; d++) {
                    assertEquals(want.out(0, h, row, d), a[d], 1e-6);
                }
            }
        }
        float[] z = new float[8];
        assertEquals(Float.NEGATIVE_INFINITY,
                LseMerge.mergeRow(z, 0, (float) none.lse(0, 0, 0), new float[8], 0, Float.NEGATIVE_INFINITY, 8));
        assertEquals(0f, z[0]);
    }

    @Test
    void mismatchedPlanIsRefused() {
        AttentionShape s = AttentionShape.of(1, 1, 4, 6, 8);
        Problems.Qkv x = Problems.qkv(5, s, DType.F32, Layout.BHSD);
        SparsePlan p = Dense.INSTANCE.plan(PlanContext.of(AttentionShape.of(1, 1, 4, 7, 8), Options.defaults()));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> ReferenceAttention.plan(p, x.q(), x.k(), x.v(), Options.defaults()));
        assertTrue(e.getMessage().startsWith("plan"), e.getMessage());
    }
}
