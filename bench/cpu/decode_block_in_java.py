#!/usr/bin/env python3
"""Writes DecodeBlockInJava.java: the decode step of bench/cpu/decode_ceiling.c (its default build) in Java
with the Vector API, to see whether the JVM compiles one block of that kernel as the C compiler does.

The same work and order as the C kernel's head(): per KV head, blocks of 16 keys; Q·Kᵀ one key row after
another for the group's 4 query vectors, folded to one vector per four keys (lane 4b + x: key b, query
x); an online softmax over the block with exp by a degree-5 polynomial; P·V over whole value rows
into the 4 × 8 running outputs. Rows are f32 in two Java arrays (K, V), 8 KV heads × 32768 keys ×
128; two threads, four KV heads each. Each round prints the copy rate (two threads, bytes read +
written), the step on 256 keys that stay in L2 ("arithmetic in L2") and the step over all keys, in
GB/s of K and V, as decode_ceiling does. It is a yardstick for docs/PERFORMANCE.md, not part of the
library.

Forms (--form), each a place where the block is cut into methods:
  block         Q·Kᵀ, the softmax and P·V of a block in one method (the running outputs pass
                from block to block through an array; the C kernel keeps them in registers)
  softmax-call  the softmax in a method of its own (scores and probabilities through an array)
  qk-call       Q·Kᵀ in a method of its own as well (its scores through an array)
The helper methods are force-inlined where the form says they belong to the block (run it with the
-XX:CompileCommand flags printed at the end); whether C2 does inline them is in the
-XX:+PrintInlining log (with -XX:+UnlockDiagnosticVMOptions).

Usage: python3 bench/cpu/decode_block_in_java.py --form block --out DIR
"""
import argparse
import os

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('--form', choices=['block', 'softmax-call', 'qk-call'], default='block')
p.add_argument('--out', required=True, help='folder for DecodeBlockInJava.java')
a = p.parse_args()

L = []
w = L.append
w('''import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/** Written by bench/cpu/decode_block_in_java.py --form %s; see there. */
public final class DecodeBlockInJava {
    static final VectorSpecies<Float> F = FloatVector.SPECIES_512;
    static final int HEADS = 8, KEYS = 32768, D = 128, G = 4, BLK = 16;
    static float[] K, V, Q = new float[HEADS * G * D];
    static int mask = KEYS - 1; // keys visited modulo mask + 1 (256: the rows stay in L2)
    static volatile float sink;
    // lanes 8..15 then 0..7, and the four 128-bit blocks pairwise swapped (the C kernel's 0x4E, 0xB1)
    static final VectorShuffle<Float> HALVES = VectorShuffle.fromValues(F, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    static final VectorShuffle<Float> QUARTERS = VectorShuffle.fromValues(F, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    static final VectorShuffle<Float> SW0 = swap(1), SW1 = swap(2), SW2 = swap(4), SW3 = swap(8);
    static final VectorMask<Float> M0 = bit(1), M1 = bit(2), M2 = bit(4), M3 = bit(8);

    static VectorShuffle<Float> swap(int d) {
        int[] i = new int[16];
        for (int t = 0; t < 16; t++) {
            i[t] = t ^ d;
        }
        return VectorShuffle.fromValues(F, i);
    }

    static VectorMask<Float> bit(int d) {
        boolean[] b = new boolean[16];
        for (int t = 0; t < 16; t++) {
            b[t] = (t & d) != 0;
        }
        return VectorMask.fromArray(F, b, 0);
    }

    /** Lanes without bit d: p's pairwise sums; lanes with it: q's. */
    static FloatVector combine(FloatVector p, FloatVector q, VectorShuffle<Float> sw, VectorMask<Float> m) {
        return p.blend(q.rearrange(sw), m).add(p.rearrange(sw).blend(q, m));
    }

    static FloatVector exp(FloatVector x) {
        x = x.max(-87f);
        FloatVector t = x.mul(1.44269504f);
        FloatVector r = t.add(12582912f).sub(12582912f);
        FloatVector f = t.sub(r);
        FloatVector p = FloatVector.broadcast(F, 1.8775767e-3f);
        p = p.fma(f, FloatVector.broadcast(F, 8.9893397e-3f));
        p = p.fma(f, FloatVector.broadcast(F, 5.5826318e-2f));
        p = p.fma(f, FloatVector.broadcast(F, 2.4015361e-1f));
        p = p.fma(f, FloatVector.broadcast(F, 6.9315308e-1f));
        p = p.fma(f, FloatVector.broadcast(F, 1f));
        IntVector e = ((IntVector) r.convert(VectorOperators.F2I, 0)).add(127).lanewise(VectorOperators.LSHL, 23);
        return p.mul(e.reinterpretAsFloats());
    }

    /** One online-softmax step over the block's scores s[0..64) (lane 4b + x of each 16): probabilities
     *  to s, the rescale of earlier outputs to s[64..80), running max and sum in ml[0..16), ml[16..32). */
    static void softmax(float[] s, float[] ml) {
        FloatVector m = FloatVector.fromArray(F, ml, 0), l = FloatVector.fromArray(F, ml, 16);
        FloatVector r0 = FloatVector.fromArray(F, s, 0), r1 = FloatVector.fromArray(F, s, 16);
        FloatVector r2 = FloatVector.fromArray(F, s, 32), r3 = FloatVector.fromArray(F, s, 48);
        FloatVector mx = r0.max(r1).max(r2.max(r3));
        mx = mx.max(mx.rearrange(HALVES));
        mx = mx.max(mx.rearrange(QUARTERS));
        FloatVector mn = m.max(mx);
        FloatVector al = exp(m.sub(mn));
        r0 = exp(r0.sub(mn));
        r1 = exp(r1.sub(mn));
        r2 = exp(r2.sub(mn));
        r3 = exp(r3.sub(mn));
        FloatVector sum = r0.add(r1).add(r2.add(r3));
        r0.intoArray(s, 0);
        r1.intoArray(s, 16);
        r2.intoArray(s, 32);
        r3.intoArray(s, 48);
        sum = sum.add(sum.rearrange(HALVES));
        sum = sum.add(sum.rearrange(QUARTERS));
        l = l.fma(al, sum);
        al.intoArray(s, 64);
        mn.intoArray(ml, 0);
        l.intoArray(ml, 16);
    }
''' % a.form)

# four keys' dot products with the group's 4 query vectors, one key row after another, folded
w('    /** Scores of keys at rows kb, kb + D, kb + 2D, kb + 3D: lane 4b + x is key b against query x. */')
w('    static FloatVector group(int kb, int qb) {')
for b in range(4):
    w(f'        FloatVector a{b}0 = FloatVector.zero(F), a{b}1 = a{b}0, a{b}2 = a{b}0, a{b}3 = a{b}0;')
    w(f'        for (int c = 0, r = kb + {b} * D; c < D; c += 16) {{')
    w('            FloatVector k = FloatVector.fromArray(F, K, r + c);')
    for x in range(4):
        w(f'            a{b}{x} = FloatVector.fromArray(F, Q, qb + {x * 128} + c).fma(k, a{b}{x});')
    w('        }')
names = [f'a{i // 4}{i % 4}' for i in range(16)]
lv = 0
while len(names) > 1:
    nn = []
    for k in range(len(names) // 2):
        n = f'f{lv}{k}'
        w(f'        FloatVector {n} = combine({names[2 * k]}, {names[2 * k + 1]}, SW{lv}, M{lv});')
        nn.append(n)
    names = nn
    lv += 1
w(f'        return {names[0]};')
w('    }')
w('''
    /** The block's scores into s[0..64). */
    static void scores(int base, int j0, int qb, float[] s) {
        group((base + (j0 & mask)) * D, qb).intoArray(s, 0);
        group((base + ((j0 + 4) & mask)) * D, qb).intoArray(s, 16);
        group((base + ((j0 + 8) & mask)) * D, qb).intoArray(s, 32);
        group((base + ((j0 + 12) & mask)) * D, qb).intoArray(s, 48);
    }

    static void head(int h, float[] out, float[] s) {
        int qb = h * G * D;
        int base = h * KEYS;
        float[] o = new float[G * D];
        float[] ml = new float[32];
        java.util.Arrays.fill(ml, 0, 16, -1e30f);
        for (int j0 = 0; j0 < KEYS; j0 += BLK) {
            scores(base, j0, qb, s);
            softmax(s, ml);''')
for x in range(4):
    w(f'            float al{x} = s[64 + {x}];')
    for c in range(8):
        w(f'            FloatVector o{x}{c} = FloatVector.fromArray(F, o, {x * 128 + 16 * c}).mul(al{x});')
w('            for (int j = 0; j < BLK; j++) {')
w('                int vr = (base + ((j0 + j) & mask)) * D;')
for x in range(4):
    w(f'                FloatVector p{x} = FloatVector.broadcast(F, s[4 * j + {x}]);')
for c in range(8):
    w(f'                FloatVector v{c} = FloatVector.fromArray(F, V, vr + {16 * c});')
    for x in range(4):
        w(f'                o{x}{c} = p{x}.fma(v{c}, o{x}{c});')
w('            }')
for x in range(4):
    for c in range(8):
        w(f'            o{x}{c}.intoArray(o, {x * 128 + 16 * c});')
w('''        }
        for (int i = 0; i < G * D; i++) {
            out[i] = o[i] / ml[16 + i / D];
        }
    }

    static double twoThreads(java.util.function.IntConsumer f) throws InterruptedException {
        Thread[] th = new Thread[2];
        long t0 = System.nanoTime();
        for (int i = 0; i < 2; i++) {
            int id = i;
            th[i] = new Thread(() -> f.accept(id));
            th[i].start();
        }
        for (Thread t : th) {
            t.join();
        }
        return (System.nanoTime() - t0) * 1e-9;
    }

    static void part(int t) {
        float[] out = new float[G * D];
        float[] s = new float[80];
        for (int h = t * HEADS / 2; h < (t + 1) * HEADS / 2; h++) {
            head(h, out, s);
        }
        sink = out[0];
    }

    public static void main(String[] args) throws InterruptedException {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int n = HEADS * KEYS * D;
        K = new float[n];
        V = new float[n];
        for (int i = 0; i < n; i++) {
            K[i] = 0.01f * ((i * 2654435761L) % 512) / 512f;
            V[i] = K[i];
        }
        for (int i = 0; i < Q.length; i++) {
            Q[i] = (i % 7) / 70f;
        }
        float[][] src = new float[2][64 << 20];
        float[][] dst = new float[2][64 << 20];
        for (float[] x : src) {
            java.util.Arrays.fill(x, 1f);
        }
        double bytes = 2.0 * n * 4;
        for (int r = -3; r < rounds; r++) { // three warm-up rounds, not printed
            double copy = 2.0 * 2 * (256L << 20)
                    / twoThreads(id -> System.arraycopy(src[id], 0, dst[id], 0, src[id].length)) / 1e9;
            mask = 255;
            double arithmetic = bytes / twoThreads(DecodeBlockInJava::part) / 1e9;
            mask = KEYS - 1;
            double step = twoThreads(DecodeBlockInJava::part);
            double decode = bytes / step / 1e9;
            if (r >= 0) {
                System.out.printf("round %d: copy %.1f GB/s, arithmetic in L2 %.1f GB/s, decode %.1f GB/s (%.0f %% of copy, %.2f ms)%n",
                        r + 1, copy, arithmetic, decode, 100 * decode / copy, step * 1e3);
            }
        }
        // head 0 against plain double-precision attention: the rounds computed the step, not less
        float[] out = new float[G * D];
        head(0, out, new float[80]);
        double worst = 0;
        for (int x = 0; x < G; x++) {
            double[] sc = new double[KEYS];
            double mx = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < KEYS; j++) {
                double dot = 0;
                for (int d = 0; d < D; d++) {
                    dot += (double) Q[x * D + d] * K[j * D + d];
                }
                sc[j] = dot;
                mx = Math.max(mx, dot);
            }
            double sum = 0;
            double[] ref = new double[D];
            for (int j = 0; j < KEYS; j++) {
                double e = Math.exp(sc[j] - mx);
                sum += e;
                for (int d = 0; d < D; d++) {
                    ref[d] += e * V[j * D + d];
                }
            }
            for (int d = 0; d < D; d++) {
                worst = Math.max(worst, Math.abs(out[x * D + d] - ref[d] / sum) / Math.abs(ref[d] / sum));
            }
        }
        System.out.printf("head 0 against double-precision attention: max relative error %.2e%n", worst);
    }
}''')

os.makedirs(a.out, exist_ok=True)
path = os.path.join(a.out, 'DecodeBlockInJava.java')
with open(path, 'w') as f:
    f.write('\n'.join(L) + '\n')
inline = ['group', 'combine', 'exp'] + ({'block': ['scores', 'softmax'], 'softmax-call': ['scores'],
                                         'qk-call': []}[a.form])
dont = {'block': [], 'softmax-call': ['softmax'], 'qk-call': ['softmax', 'scores']}[a.form]
flags = ' '.join([f'-XX:CompileCommand=inline,DecodeBlockInJava::{m}' for m in inline]
                 + [f'-XX:CompileCommand=dontinline,DecodeBlockInJava::{m}' for m in dont])
print(f'wrote {path}; compile and run with JDK 25:\n'
      f'  javac --add-modules jdk.incubator.vector -d {a.out} {path}\n'
      f'  java --add-modules jdk.incubator.vector -Xmx8g -XX:+UseTransparentHugePages {flags} -cp {a.out} DecodeBlockInJava 5')
