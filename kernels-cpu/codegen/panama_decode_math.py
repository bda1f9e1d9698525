#!/usr/bin/env python3
"""Writes kernels-cpu/src/main/panama/dev/sparsa/cpu/panama/PanamaDecodeMath.java.

The vector decode kernels exist for f32 and bf16 rows, each read from a native segment or from the
Java array behind a heap segment. The four variants differ only in their loads, and C2 does not
inline a helper that returns a vector once a method is large (a vector that crosses a call is boxed
on the heap), so the loads are written out in every loop body. This script expands one template
per kernel into the four variants after the hand-written head (PanamaDecodeMath.head.java.in).
Edit the head or the templates here, then run: python3 kernels-cpu/codegen/panama_decode_math.py
"""
import os
LOAD = {
 'F32A': ('FloatVector.fromArray(F, {seg}, {seg}Base + (int) ({off} >>> 2) + ({d}))',
          'FloatVector.fromArray(F, {seg}, {seg}Base + (int) ({off} >>> 2) + ({d}), fm)'),
 'Bf16A': ('((IntVector) ShortVector.fromArray(S, {seg}, {seg}Base + (int) ({off} >>> 1) + ({d})).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()',
           '((IntVector) ShortVector.fromArray(S, {seg}, {seg}Base + (int) ({off} >>> 1) + ({d}), sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()'),
 'F32': ('FloatVector.fromMemorySegment(F, {seg}, {off} + 4L * ({d}), LE)',
         'FloatVector.fromMemorySegment(F, {seg}, {off} + 4L * ({d}), LE, fm)'),
 'Bf16': ('((IntVector) ShortVector.fromMemorySegment(S, {seg}, {off} + 2L * ({d}), LE).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()',
          '((IntVector) ShortVector.fromMemorySegment(S, {seg}, {off} + 2L * ({d}), LE, sm).convertShape(VectorOperators.ZERO_EXTEND_S2I, I, 0)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()'),
}
# Loads that only bring a line into the cache: one scalar per line, summed into a sink. Scalars, not
# vectors: a vector sum's `add` is a virtual call that C2 inlines only where it knows the vector's
# class; in about one JVM in five the bf16 read pass, compiled within its first calls, kept that call,
# and every load and add then ran through the API's allocating fallback, 3-4 x slower, for as long as
# that code lived (docs/PERFORMANCE.md, "bf16 rows 3–4 × slower in some JVMs").
RAW = {
 'F32A': '{seg}[{seg}Base + (int) ({off} >>> 2) + ({d})]',
 'Bf16A': '{seg}[{seg}Base + (int) ({off} >>> 1) + ({d})]',
 'F32': '{seg}.get(RAW_F32, {off} + 4L * ({d}))',
 'Bf16': '{seg}.get(RAW_BF16, {off} + 2L * ({d}))',
}
RAWV = {'F32A': 'float', 'F32': 'float', 'Bf16A': 'int', 'Bf16': 'int'}
RAWZ = {'F32A': '0f', 'F32': '0f', 'Bf16A': '0', 'Bf16': '0'}
SINKA = {'F32A': 'float[]', 'F32': 'float[]', 'Bf16A': 'short[]', 'Bf16': 'short[]'}
SINKG = {'F32A': 'SINK.get()', 'F32': 'SINK.get()', 'Bf16A': 'SINK16.get()', 'Bf16': 'SINK16.get()'}
# bytes per element
ESIZE = {'F32A': '4', 'F32': '4', 'Bf16A': '2', 'Bf16': '2'}
# elements per 64-byte line
LINEEL = {'F32A': 'LINE', 'F32': 'LINE', 'Bf16A': '2 * LINE', 'Bf16': '2 * LINE'}
def raw(t, seg, off, d):
    return RAW[t].format(seg=seg, off=off, d=d)
def sink(expr):
    return f'sink[0] += {expr}'

def ld(t, seg, off, d, tail=False):
    return LOAD[t][1 if tail else 0].format(seg=seg, off=off, d=d)

def dot4(t):
    """The call that scores four query vectors against the L keys from j0: one 4 × 4 kernel over arrays;
    over segments two 4 × 2 kernels per four keys, because C1 gives up on the 4 × 4 kernel's
    segment loads ("out of virtual registers in linear scan") and the method then stays in tier-2
    code without the Vector API intrinsics, 15-40 times slower. The arithmetic per key is the same."""
    if t.endswith('A'):
        return '                dot4x4%s(q, x * ldQ, ldQ, dFull, dim, <<ARG:keys>>, kOff, j0, n, fm, sm, work);' % t
    return ('''                for (int kp = 0; kp < L; kp += 2) {
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot4x2%s(q, x * ldQ, ldQ, dFull, dim, <<ARG:keys>>, oa, ob, fm, sm, work, (kp >> 1) * L);
                }''' % t)

def dot4x4(t):
    """The 4 × 4 kernel, for the array variants only (see dot4)."""
    if not t.endswith('A'):
        return ''
    return f'''    /**
     * Four query vectors × four keys over the head dimension (each query vector loaded once for the
     * four keys), folded pairwise into {{@code work}} as two key pairs, for the {{@code L}} keys from
     * {{@code j0}} (the last key repeated past {{@code n}}) in one call: the same arithmetic per key as
     * {{@link #dot4x2{t[:-1]}}}.
     */
    private static void dot4x4{t}(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment keys, long[] kOff,
                                 int j0, int n, VectorMask<Float> fm, VectorMask<Short> sm, float[] work) {{
        for (int kp = 0; kp < L; kp += 4) {{
            long oa = kOff[Math.min(j0 + kp, n - 1)];
            long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
            long oc = kOff[Math.min(j0 + kp + 2, n - 1)];
            long od = kOff[Math.min(j0 + kp + 3, n - 1)];
            int at = (kp >> 1) * L;
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            FloatVector b0 = FloatVector.zero(F);
            FloatVector b1 = FloatVector.zero(F);
            FloatVector b2 = FloatVector.zero(F);
            FloatVector b3 = FloatVector.zero(F);
            FloatVector c0 = FloatVector.zero(F);
            FloatVector c1 = FloatVector.zero(F);
            FloatVector c2 = FloatVector.zero(F);
            FloatVector c3 = FloatVector.zero(F);
            FloatVector d0 = FloatVector.zero(F);
            FloatVector d1 = FloatVector.zero(F);
            FloatVector d2 = FloatVector.zero(F);
            FloatVector d3 = FloatVector.zero(F);
            int q1 = q0 + ldQ;
            int q2 = q1 + ldQ;
            int q3 = q2 + ldQ;
            int d = 0;
            for (; d < dFull; d += L) {{
                FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
                FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
                FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
                FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
                FloatVector ka = {ld(t, 'keys', 'oa', 'd', False)};
                a0 = v0.fma(ka, a0);
                a1 = v1.fma(ka, a1);
                a2 = v2.fma(ka, a2);
                a3 = v3.fma(ka, a3);
                FloatVector kb = {ld(t, 'keys', 'ob', 'd', False)};
                b0 = v0.fma(kb, b0);
                b1 = v1.fma(kb, b1);
                b2 = v2.fma(kb, b2);
                b3 = v3.fma(kb, b3);
                FloatVector kc = {ld(t, 'keys', 'oc', 'd', False)};
                c0 = v0.fma(kc, c0);
                c1 = v1.fma(kc, c1);
                c2 = v2.fma(kc, c2);
                c3 = v3.fma(kc, c3);
                FloatVector kd = {ld(t, 'keys', 'od', 'd', False)};
                d0 = v0.fma(kd, d0);
                d1 = v1.fma(kd, d1);
                d2 = v2.fma(kd, d2);
                d3 = v3.fma(kd, d3);
            }}
            if (d < dim) {{
                FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
                FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
                FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
                FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
                FloatVector ka = {ld(t, 'keys', 'oa', 'd', True)};
                a0 = v0.fma(ka, a0);
                a1 = v1.fma(ka, a1);
                a2 = v2.fma(ka, a2);
                a3 = v3.fma(ka, a3);
                FloatVector kb = {ld(t, 'keys', 'ob', 'd', True)};
                b0 = v0.fma(kb, b0);
                b1 = v1.fma(kb, b1);
                b2 = v2.fma(kb, b2);
                b3 = v3.fma(kb, b3);
                FloatVector kc = {ld(t, 'keys', 'oc', 'd', True)};
                c0 = v0.fma(kc, c0);
                c1 = v1.fma(kc, c1);
                c2 = v2.fma(kc, c2);
                c3 = v3.fma(kc, c3);
                FloatVector kd = {ld(t, 'keys', 'od', 'd', True)};
                d0 = v0.fma(kd, d0);
                d1 = v1.fma(kd, d1);
                d2 = v2.fma(kd, d2);
                d3 = v3.fma(kd, d3);
            }}
            a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
            c0.add(c0.rearrange(SW1)).blend(d0.add(d0.rearrange(SW1)), M1).intoArray(work, at + L);
            a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
            c1.add(c1.rearrange(SW1)).blend(d1.add(d1.rearrange(SW1)), M1).intoArray(work, HALF + at + L);
            a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
            c2.add(c2.rearrange(SW1)).blend(d2.add(d2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at + L);
            a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
            c3.add(c3.rearrange(SW1)).blend(d3.add(d3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at + L);
        }}
    }}

'''

def dot4x2(t):
    """The 4 × 2 kernel, for the segment variants only (the array variants call the 4 × 4 kernel, whose
    arithmetic per key is the same)."""
    if t.endswith('A'):
        return ''
    return f'''    /** Four query vectors × two keys over the head dimension, folded pairwise into {{@code work}}. */
    private static void dot4x2{t}(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {{
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector b2 = a0;
        FloatVector b3 = a0;
        int q1 = q0 + ldQ;
        int q2 = q1 + ldQ;
        int q3 = q2 + ldQ;
        int d = 0;
        for (; d < dFull; d += L) {{
            FloatVector ka = {ld(t, 'keys', 'oa', 'd')};
            FloatVector kb = {ld(t, 'keys', 'ob', 'd')};
            FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
            FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
            FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
            FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
            a0 = v0.fma(ka, a0);
            b0 = v0.fma(kb, b0);
            a1 = v1.fma(ka, a1);
            b1 = v1.fma(kb, b1);
            a2 = v2.fma(ka, a2);
            b2 = v2.fma(kb, b2);
            a3 = v3.fma(ka, a3);
            b3 = v3.fma(kb, b3);
        }}
        if (d < dim) {{
            FloatVector ka = {ld(t, 'keys', 'oa', 'd', True)};
            FloatVector kb = {ld(t, 'keys', 'ob', 'd', True)};
            FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
            FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
            FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
            FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);
            a0 = v0.fma(ka, a0);
            b0 = v0.fma(kb, b0);
            a1 = v1.fma(ka, a1);
            b1 = v1.fma(kb, b1);
            a2 = v2.fma(ka, a2);
            b2 = v2.fma(kb, b2);
            a3 = v3.fma(ka, a3);
            b3 = v3.fma(kb, b3);
        }}
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }}

'''

def scores(t):
    return f'''
    private static void scores{t}(float[] q, int ldQ, int nq, int dim, MemorySegment keys, long[] kOff,
                                 MemorySegment values, long[] vOff, int dimV, int n, float[] s, int ldS, boolean read) {{
        int dFull = dim - dim % L;
        VectorMask<Float> fm = firstF(dim - dFull);
        VectorMask<Short> sm = firstS(dim - dFull);
        float[] work = WORK.get();
        // rows are read one group ahead of the arithmetic, so that their lines are on the way while
        // the previous group's scores are computed (the value rows too, for the P·V pass)
        if (!read) {{
            touch{t}(<<ARG:keys>>, kOff, 0, n, dim);
        }}
        for (int j0 = 0; j0 < n; j0 += L) {{
            int x = 0;
            for (; x + 4 <= nq; x += 4) {{
{dot4(t)}
                for (int i = 0; i < 4; i++) {{
                    fold(work, i * HALF, s, (x + i) * ldS + j0);
                }}
            }}
            for (; x < nq; x++) {{
                for (int kp = 0; kp < L; kp += 2) {{
                    long oa = kOff[Math.min(j0 + kp, n - 1)];
                    long ob = kOff[Math.min(j0 + kp + 1, n - 1)];
                    dot1x2{t}(q, x * ldQ, dFull, dim, <<ARG:keys>>, oa, ob, fm, sm, work, (kp >> 1) * L);
                }}
                fold(work, 0, s, x * ldS + j0);
            }}
        }}
    }}

{dot4x2(t)}{dot4x4(t)}    /** One query vector × two keys, with the same arithmetic as {{@link #dot4x2{t.removesuffix('A')}}}. */
    private static void dot1x2{t}(float[] q, int q0, int dFull, int dim, MemorySegment keys, long oa, long ob,
                                 VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {{
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {{
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma({ld(t, 'keys', 'oa', 'd')}, a);
            b = v.fma({ld(t, 'keys', 'ob', 'd')}, b);
        }}
        if (d < dim) {{
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            a = v.fma({ld(t, 'keys', 'oa', 'd', True)}, a);
            b = v.fma({ld(t, 'keys', 'ob', 'd', True)}, b);
        }}
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }}
'''

def bounds(t):
    # two forms of each kernel. The plain form adds max(q·min, q·max) per channel (Math.max: NaN when
    # either product is). The sign form ('Sign') multiplies q by the bound its sign picks (min where
    # q < 0, else max): the same product, so the same bits, wherever q's channels are finite and not 0
    # and min ≤ max (as appends write them); the caller checks q (DecodeMath.boundsBySign). It needs no
    # max, which the Vector API lowers to several instructions. Over segments (never called by the
    # scorer, which copies native rows to the heap first) the four-vector kernel is too large for C1's
    # register allocator in its bf16 form, so they keep one vector at a time
    def pick(form, acc, v, mn, mx, mask):
        if form == '':
            return f'{acc} = {acc}.add({v}.mul({mn}).max({v}.mul({mx})));'
        return f'{acc} = {acc}.add({v}.mul({mx}.blend({mn}, {mask})));'

    def mask(form, pairs):
        # one mask per (query vector, mask name): the lanes where q < 0
        if form == '':
            return ''
        return ''.join(f'\n            VectorMask<Float> {m} = {v}.compare(VectorOperators.LT, 0f);' for v, m in pairs)

    def call4(form):
        return f'''bound4x2{t}{form}(q, x * ldQ, ldQ, dFull, dim, <<ARG:bounds>>, minOff[ja], maxOff[ja], minOff[jb],
                                maxOff[jb], fm, sm, work, (kp >> 1) * L)'''

    def call1(form):
        return f'''bound1x2{t}{form}(q, x * ldQ, dFull, dim, <<ARG:bounds>>, minOff[ja], maxOff[ja], minOff[jb], maxOff[jb],
                                fm, sm, work, (kp >> 1) * L)'''

    four_loop = f'''
            for (; x + 4 <= nq; x += 4) {{
                for (int kp = 0; kp < L; kp += 2) {{
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    if (bySign) {{
                        {call4('Sign')};
                    }} else {{
                        {call4('')};
                    }}
                }}
                for (int i = 0; i < 4; i++) {{
                    fold(work, i * HALF, out, (x + i) * ldS + j0);
                }}
            }}''' if t.endswith('A') else ''
    text = f'''
    private static void bounds{t}(float[] q, int ldQ, int nq, int dim, MemorySegment bounds, long[] minOff,
                                 long[] maxOff, int n, float[] out, int ldS, boolean bySign) {{
        int dFull = dim - dim % L;
        VectorMask<Float> fm = firstF(dim - dFull);
        VectorMask<Short> sm = firstS(dim - dFull);
        float[] work = WORK.get();
        for (int j0 = 0; j0 < n; j0 += L) {{
            int x = 0;{four_loop}
            for (; x < nq; x++) {{
                for (int kp = 0; kp < L; kp += 2) {{
                    int ja = Math.min(j0 + kp, n - 1);
                    int jb = Math.min(j0 + kp + 1, n - 1);
                    if (bySign) {{
                        {call1('Sign')};
                    }} else {{
                        {call1('')};
                    }}
                }}
                fold(work, 0, out, x * ldS + j0);
            }}
        }}
    }}
'''
    for form in ('', 'Sign'):
        what = ('with Math.max of the two products' if form == '' else
                'by the sign of q (see {@link DecodeMath#boundsBySign})')
        one = lambda tail: f'''
            FloatVector v = FloatVector.fromArray(F, q, q0 + d);
            FloatVector na = {ld(t, 'bounds', 'mnA', 'd', tail)};
            FloatVector xa = {ld(t, 'bounds', 'mxA', 'd', tail)};
            FloatVector nb = {ld(t, 'bounds', 'mnB', 'd', tail)};
            FloatVector xb = {ld(t, 'bounds', 'mxB', 'd', tail)};{mask(form, [('v', 'm')])}
            {pick(form, 'a', 'v', 'na', 'xa', 'm')}
            {pick(form, 'b', 'v', 'nb', 'xb', 'm')}'''
        text += f'''
    /** One query vector × two pages, {what}. */
    private static void bound1x2{t}{form}(float[] q, int q0, int dFull, int dim, MemorySegment bounds, long mnA, long mxA,
                                   long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work, int at) {{
        FloatVector a = FloatVector.zero(F);
        FloatVector b = a;
        int d = 0;
        for (; d < dFull; d += L) {{{one(False)}
        }}
        if (d < dim) {{{one(True)}
        }}
        a.add(a.rearrange(SW1)).blend(b.add(b.rearrange(SW1)), M1).intoArray(work, at);
    }}
'''
        if t.endswith('A'):
            vs = ['v0', 'v1', 'v2', 'v3']
            four = lambda tail: f'''
            FloatVector na = {ld(t, 'bounds', 'mnA', 'd', tail)};
            FloatVector xa = {ld(t, 'bounds', 'mxA', 'd', tail)};
            FloatVector nb = {ld(t, 'bounds', 'mnB', 'd', tail)};
            FloatVector xb = {ld(t, 'bounds', 'mxB', 'd', tail)};
            FloatVector v0 = FloatVector.fromArray(F, q, q0 + d);
            FloatVector v1 = FloatVector.fromArray(F, q, q1 + d);
            FloatVector v2 = FloatVector.fromArray(F, q, q2 + d);
            FloatVector v3 = FloatVector.fromArray(F, q, q3 + d);{mask(form, [(v, 'm' + v) for v in vs])}''' + ''.join(
                f'''
            {pick(form, 'a' + v[1], v, 'na', 'xa', 'm' + v)}
            {pick(form, 'b' + v[1], v, 'nb', 'xb', 'm' + v)}''' for v in vs)
            text += f'''
    /**
     * Four query vectors × two pages, {what}.
     * Each bound row is loaded once for the four (the per-lane sums and the fold of {{@link
     * #bound1x2{t}{form}}}, so the same bits).
     */
    private static void bound4x2{t}{form}(float[] q, int q0, int ldQ, int dFull, int dim, MemorySegment bounds, long mnA,
                                   long mxA, long mnB, long mxB, VectorMask<Float> fm, VectorMask<Short> sm, float[] work,
                                   int at) {{
        FloatVector a0 = FloatVector.zero(F);
        FloatVector a1 = a0;
        FloatVector a2 = a0;
        FloatVector a3 = a0;
        FloatVector b0 = a0;
        FloatVector b1 = a0;
        FloatVector b2 = a0;
        FloatVector b3 = a0;
        int q1 = q0 + ldQ;
        int q2 = q1 + ldQ;
        int q3 = q2 + ldQ;
        int d = 0;
        for (; d < dFull; d += L) {{{four(False)}
        }}
        if (d < dim) {{{four(True)}
        }}
        a0.add(a0.rearrange(SW1)).blend(b0.add(b0.rearrange(SW1)), M1).intoArray(work, at);
        a1.add(a1.rearrange(SW1)).blend(b1.add(b1.rearrange(SW1)), M1).intoArray(work, HALF + at);
        a2.add(a2.rearrange(SW1)).blend(b2.add(b2.rearrange(SW1)), M1).intoArray(work, 2 * HALF + at);
        a3.add(a3.rearrange(SW1)).blend(b3.add(b3.rearrange(SW1)), M1).intoArray(work, 3 * HALF + at);
    }}
'''
    return text

def accumulate(t):
    return f'''
    private static void accumulate{t}(float[] p, int ldS, int nq, int n, MemorySegment values, long[] vOff, int dimV,
                                     float[] o, int ldO, float[] alpha, boolean read) {{
        if (!read) {{
            touch{t}(<<ARG:values>>, vOff, 0, n, dimV);
        }}
        int x = 0;
        for (; x + 4 <= nq; x += 4) {{
            int c = 0;
            for (; c + 4 * L <= dimV; c += 4 * L) {{
                pv4x4{t}(p, ldS, x, n, <<ARG:values>>, vOff, c, o, ldO, alpha);
            }}
            for (; c + 2 * L <= dimV; c += 2 * L) {{
                pv4x2{t}(p, ldS, x, n, <<ARG:values>>, vOff, c, o, ldO, alpha);
            }}
            for (; c < dimV; c += L) {{
                pv4x1{t}(p, ldS, x, n, <<ARG:values>>, vOff, c, dimV, o, ldO, alpha);
            }}
        }}
        for (; x < nq; x++) {{
            int c = 0;
            for (; c + 2 * L <= dimV; c += 2 * L) {{
                pv1x2{t}(p, ldS, x, n, <<ARG:values>>, vOff, c, o, ldO, alpha);
            }}
            for (; c < dimV; c += L) {{
                pv1x1{t}(p, ldS, x, n, <<ARG:values>>, vOff, c, dimV, o, ldO, alpha);
            }}
        }}
    }}

    /**
     * Reads key row j then value row j, for every j, one load per line, into four sums, ahead of the
     * arithmetic that needs them: the lines arrive in sequence, which the hardware prefetcher follows.
     * Rows that follow one another in memory on both sides (and are as long) are read as one range, a key
     * line and a value line in turn, without a loop per row.
     */
    private static void readRows{t}(MemorySegment keys, long[] kOff, int dim, MemorySegment values, long[] vOff, int dimV,
                                   int n) {{
        int step = {LINEEL[t]};
        // the last element of a row (its last line is read even where the row ends inside it)
        int lastK = dim - 1;
        int lastV = dimV - 1;
        long rowK = dim * {ESIZE[t]}L;
        long rowV = dimV * {ESIZE[t]}L;
        {RAWV[t]} t0 = {RAWZ[t]};
        {RAWV[t]} t1 = t0;
        {RAWV[t]} t2 = t0;
        {RAWV[t]} t3 = t0;
        for (int j = 0; j < n; j++) {{
            long ko = kOff[j];
            long vo = vOff[j];
            int e = j + 1;
            while (dim == dimV && e < n && kOff[e] == kOff[e - 1] + rowK && vOff[e] == vOff[e - 1] + rowV) {{
                e++;
            }}
            if (e - j > 1) {{
                int last = (e - j) * dim - 1;
                for (int c = 0; c <= last; c += step) {{
                    t0 += {raw(t, 'keys', 'ko', 'c')};
                    t2 += {raw(t, 'values', 'vo', 'c')};
                }}
                // the range's last line, where the range does not start on a line
                t1 += {raw(t, 'keys', 'ko', 'last')};
                t3 += {raw(t, 'values', 'vo', 'last')};
                j = e - 1;
                continue;
            }}
            int c = 0;
            for (; c + step <= lastK; c += 2 * step) {{
                t0 += {raw(t, 'keys', 'ko', 'c')};
                t1 += {raw(t, 'keys', 'ko', 'c + step')};
            }}
            for (; c <= lastK; c += step) {{
                t0 += {raw(t, 'keys', 'ko', 'c')};
            }}
            c = 0;
            for (; c + step <= lastV; c += 2 * step) {{
                t2 += {raw(t, 'values', 'vo', 'c')};
                t3 += {raw(t, 'values', 'vo', 'c + step')};
            }}
            for (; c <= lastV; c += step) {{
                t2 += {raw(t, 'values', 'vo', 'c')};
            }}
        }}
        {SINKA[t]} sink = {SINKG[t]};
        {sink('t0 + t1 + t2 + t3')};
    }}

    private static void touch{t}(MemorySegment values, long[] vOff, int from, int to, int dimV) {{
        // four sums, so that no chain of additions paces the loads; one load per line, not widened
        int step = {LINEEL[t]};
        int last = dimV - 1;
        {RAWV[t]} t0 = {RAWZ[t]};
        {RAWV[t]} t1 = t0;
        {RAWV[t]} t2 = t0;
        {RAWV[t]} t3 = t0;
        for (int j = from; j < to; j++) {{
            long off = vOff[j];
            int c = 0;
            for (; c + 3 * step <= last; c += 4 * step) {{
                t0 += {raw(t, 'values', 'off', 'c')};
                t1 += {raw(t, 'values', 'off', 'c + step')};
                t2 += {raw(t, 'values', 'off', 'c + 2 * step')};
                t3 += {raw(t, 'values', 'off', 'c + 3 * step')};
            }}
            for (; c <= last; c += step) {{
                t0 += {raw(t, 'values', 'off', 'c')};
            }}
        }}
        {SINKA[t]} sink = {SINKG[t]};
        {sink('t0 + t1 + t2 + t3')};
    }}

    /** Four query vectors × four column vectors: each probability broadcast once for four columns. */
    private static void pv4x4{t}(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {{
        int o0 = x * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector c00 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c01 = FloatVector.fromArray(F, o, o0 + 1 * L).mul(alpha[x]);
        FloatVector c02 = FloatVector.fromArray(F, o, o0 + 2 * L).mul(alpha[x]);
        FloatVector c03 = FloatVector.fromArray(F, o, o0 + 3 * L).mul(alpha[x]);
        FloatVector c10 = FloatVector.fromArray(F, o, o1).mul(alpha[x + 1]);
        FloatVector c11 = FloatVector.fromArray(F, o, o1 + 1 * L).mul(alpha[x + 1]);
        FloatVector c12 = FloatVector.fromArray(F, o, o1 + 2 * L).mul(alpha[x + 1]);
        FloatVector c13 = FloatVector.fromArray(F, o, o1 + 3 * L).mul(alpha[x + 1]);
        FloatVector c20 = FloatVector.fromArray(F, o, o2).mul(alpha[x + 2]);
        FloatVector c21 = FloatVector.fromArray(F, o, o2 + 1 * L).mul(alpha[x + 2]);
        FloatVector c22 = FloatVector.fromArray(F, o, o2 + 2 * L).mul(alpha[x + 2]);
        FloatVector c23 = FloatVector.fromArray(F, o, o2 + 3 * L).mul(alpha[x + 2]);
        FloatVector c30 = FloatVector.fromArray(F, o, o3).mul(alpha[x + 3]);
        FloatVector c31 = FloatVector.fromArray(F, o, o3 + 1 * L).mul(alpha[x + 3]);
        FloatVector c32 = FloatVector.fromArray(F, o, o3 + 2 * L).mul(alpha[x + 3]);
        FloatVector c33 = FloatVector.fromArray(F, o, o3 + 3 * L).mul(alpha[x + 3]);
        int p0 = x * ldS;
        int p1 = p0 + ldS;
        int p2 = p1 + ldS;
        int p3 = p2 + ldS;
        for (int j = 0; j < n; j++) {{
            long off = vOff[j];
            FloatVector v0 = {ld(t, 'values', 'off', 'c')};
            FloatVector v1 = {ld(t, 'values', 'off', 'c + 1 * L')};
            FloatVector v2 = {ld(t, 'values', 'off', 'c + 2 * L')};
            FloatVector v3 = {ld(t, 'values', 'off', 'c + 3 * L')};
            FloatVector w0 = FloatVector.broadcast(F, p[p0 + j]);
            c00 = w0.fma(v0, c00);
            c01 = w0.fma(v1, c01);
            c02 = w0.fma(v2, c02);
            c03 = w0.fma(v3, c03);
            FloatVector w1 = FloatVector.broadcast(F, p[p1 + j]);
            c10 = w1.fma(v0, c10);
            c11 = w1.fma(v1, c11);
            c12 = w1.fma(v2, c12);
            c13 = w1.fma(v3, c13);
            FloatVector w2 = FloatVector.broadcast(F, p[p2 + j]);
            c20 = w2.fma(v0, c20);
            c21 = w2.fma(v1, c21);
            c22 = w2.fma(v2, c22);
            c23 = w2.fma(v3, c23);
            FloatVector w3 = FloatVector.broadcast(F, p[p3 + j]);
            c30 = w3.fma(v0, c30);
            c31 = w3.fma(v1, c31);
            c32 = w3.fma(v2, c32);
            c33 = w3.fma(v3, c33);
        }}
        c00.intoArray(o, o0);
        c01.intoArray(o, o0 + 1 * L);
        c02.intoArray(o, o0 + 2 * L);
        c03.intoArray(o, o0 + 3 * L);
        c10.intoArray(o, o1);
        c11.intoArray(o, o1 + 1 * L);
        c12.intoArray(o, o1 + 2 * L);
        c13.intoArray(o, o1 + 3 * L);
        c20.intoArray(o, o2);
        c21.intoArray(o, o2 + 1 * L);
        c22.intoArray(o, o2 + 2 * L);
        c23.intoArray(o, o2 + 3 * L);
        c30.intoArray(o, o3);
        c31.intoArray(o, o3 + 1 * L);
        c32.intoArray(o, o3 + 2 * L);
        c33.intoArray(o, o3 + 3 * L);
    }}

    private static void pv4x2{t}(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {{
        int o0 = x * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector c00 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c01 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        FloatVector c10 = FloatVector.fromArray(F, o, o1).mul(alpha[x + 1]);
        FloatVector c11 = FloatVector.fromArray(F, o, o1 + L).mul(alpha[x + 1]);
        FloatVector c20 = FloatVector.fromArray(F, o, o2).mul(alpha[x + 2]);
        FloatVector c21 = FloatVector.fromArray(F, o, o2 + L).mul(alpha[x + 2]);
        FloatVector c30 = FloatVector.fromArray(F, o, o3).mul(alpha[x + 3]);
        FloatVector c31 = FloatVector.fromArray(F, o, o3 + L).mul(alpha[x + 3]);
        int p0 = x * ldS;
        int p1 = p0 + ldS;
        int p2 = p1 + ldS;
        int p3 = p2 + ldS;
        for (int j = 0; j < n; j++) {{
            long off = vOff[j];
            FloatVector v0 = {ld(t, 'values', 'off', 'c')};
            FloatVector v1 = {ld(t, 'values', 'off', 'c + L')};
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c00 = w.fma(v0, c00);
            c01 = w.fma(v1, c01);
            w = FloatVector.broadcast(F, p[p1 + j]);
            c10 = w.fma(v0, c10);
            c11 = w.fma(v1, c11);
            w = FloatVector.broadcast(F, p[p2 + j]);
            c20 = w.fma(v0, c20);
            c21 = w.fma(v1, c21);
            w = FloatVector.broadcast(F, p[p3 + j]);
            c30 = w.fma(v0, c30);
            c31 = w.fma(v1, c31);
        }}
        c00.intoArray(o, o0);
        c01.intoArray(o, o0 + L);
        c10.intoArray(o, o1);
        c11.intoArray(o, o1 + L);
        c20.intoArray(o, o2);
        c21.intoArray(o, o2 + L);
        c30.intoArray(o, o3);
        c31.intoArray(o, o3 + L);
    }}

    private static void pv4x1{t}(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {{
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = firstF(dimV - c);
        VectorMask<Short> sm = firstS(dimV - c);
        int o0 = x * ldO + c;
        int o1 = o0 + ldO;
        int o2 = o1 + ldO;
        int o3 = o2 + ldO;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o1).mul(alpha[x + 1]);
        FloatVector c2 = FloatVector.fromArray(F, o, o2).mul(alpha[x + 2]);
        FloatVector c3 = FloatVector.fromArray(F, o, o3).mul(alpha[x + 3]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {{
            long off = vOff[j];
            FloatVector v = full ? {ld(t, 'values', 'off', 'c')} : {ld(t, 'values', 'off', 'c', True)};
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
            c1 = FloatVector.broadcast(F, p[p0 + ldS + j]).fma(v, c1);
            c2 = FloatVector.broadcast(F, p[p0 + 2 * ldS + j]).fma(v, c2);
            c3 = FloatVector.broadcast(F, p[p0 + 3 * ldS + j]).fma(v, c3);
        }}
        c0.intoArray(o, o0);
        c1.intoArray(o, o1);
        c2.intoArray(o, o2);
        c3.intoArray(o, o3);
    }}

    private static void pv1x2{t}(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, float[] o,
                                int ldO, float[] alpha) {{
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        FloatVector c1 = FloatVector.fromArray(F, o, o0 + L).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {{
            long off = vOff[j];
            FloatVector w = FloatVector.broadcast(F, p[p0 + j]);
            c0 = w.fma({ld(t, 'values', 'off', 'c')}, c0);
            c1 = w.fma({ld(t, 'values', 'off', 'c + L')}, c1);
        }}
        c0.intoArray(o, o0);
        c1.intoArray(o, o0 + L);
    }}

    private static void pv1x1{t}(float[] p, int ldS, int x, int n, MemorySegment values, long[] vOff, int c, int dimV,
                                float[] o, int ldO, float[] alpha) {{
        boolean full = c + L <= dimV;
        VectorMask<Float> fm = firstF(dimV - c);
        VectorMask<Short> sm = firstS(dimV - c);
        int o0 = x * ldO + c;
        FloatVector c0 = FloatVector.fromArray(F, o, o0).mul(alpha[x]);
        int p0 = x * ldS;
        for (int j = 0; j < n; j++) {{
            long off = vOff[j];
            FloatVector v = full ? {ld(t, 'values', 'off', 'c')} : {ld(t, 'values', 'off', 'c', True)};
            c0 = FloatVector.broadcast(F, p[p0 + j]).fma(v, c0);
        }}
        c0.intoArray(o, o0);
    }}
'''

PARAM = {'F32': 'MemorySegment {n}', 'Bf16': 'MemorySegment {n}', 'F32A': 'float[] {n}, int {n}Base',
         'Bf16A': 'short[] {n}, int {n}Base'}
ARG = {'F32': '{n}', 'Bf16': '{n}', 'F32A': '{n}, {n}Base', 'Bf16A': '{n}, {n}Base'}
def typed(text, t):
    for n in ('keys', 'values', 'bounds'):
        text = text.replace('MemorySegment ' + n, PARAM[t].format(n=n))
        text = text.replace('<<ARG:' + n + '>>', ARG[t].format(n=n))
    return text
here = os.path.dirname(os.path.abspath(__file__))
head = open(os.path.join(here, 'PanamaDecodeMath.head.java.in')).read()
body = ''
for t in ('F32', 'Bf16', 'F32A', 'Bf16A'):
    what = {'F32': 'f32 rows in a segment', 'Bf16': 'bf16 rows in a segment', 'F32A': 'f32 rows in a float[]',
            'Bf16A': 'bf16 rows in a short[]'}[t]
    body += f'\n    // ---------------------------------------------------------------- {what}\n'
    body += typed(scores(t) + bounds(t) + accumulate(t), t)
target = os.path.join(here, '..', 'src', 'main', 'panama', 'dev', 'sparsa', 'cpu', 'panama', 'PanamaDecodeMath.java')
with open(target, 'w') as f:
    f.write(head + body + '}\n')
