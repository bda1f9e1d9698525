package dev.sparsa.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.HashSet;
import java.util.Set;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * The shared-memory layouts of the e4m3 Hopper kernel, on the host: a transcription of {@code swz},
 * {@code vtOffset} and {@code transposeV8} (sparsa_prefill_wgmma.cuh) run lane by lane over a random
 * chunk of V, checked against what P·V needs. The kernel packs a thread's probabilities of row g as
 * {@code s[4kk][0], s[4kk][1], s[4kk+1][0], s[4kk+1][1]} (keys {2t, 2t+1, 8+2t, 9+2t} of the 32-key step
 * kk) into the 8-bit A fragment's columns {4t..4t+3}, and likewise +16; so column j of step kk must
 * meet key {@code 32kk + 16(j / 16) + 2((j % 16) / 4) + (j & 1) + 8((j >> 1) & 1)} in Vᵀ. The GPU
 * check of the same layouts against the hardware is kernels-cuda/bench/e4m3-check.cu's micro-test.
 */
class E4m3LayoutTest {
    private static final int KC = 64;
    private static final int D = 128;

    /** swz(r, c, rows): byte offset of 16-byte chunk c of row r under the 128-byte swizzle. */
    private static int swz(int r, int c, int rows) {
        return (c >> 3) * rows * 128 + r * 128 + (((c & 7) ^ (r & 7)) << 4);
    }

    /** vtOffset(n, j): byte of key position j of head-dim row n in Vᵀ (LBO 128, SBO 512, no swizzle). */
    private static int vtOffset(int n, int j) {
        return (n >> 3) * 512 + (j >> 4) * 128 + (n & 7) * 16 + (j & 15);
    }

    /** __byte_perm(x, y, s): byte i of the result is byte (s >> 4i) & 7 of the pair (y:x). */
    private static int bytePerm(int x, int y, int s) {
        long pair = (x & 0xFFFFFFFFL) | ((y & 0xFFFFFFFFL) << 32);
        int r = 0;
        for (int i = 0; i < 4; i++) {
            int sel = (s >>> (4 * i)) & 7;
            r |= (int) ((pair >>> (8 * sel)) & 0xFF) << (8 * i);
        }
        return r;
    }

    private static int load32(byte[] b, int off) {
        return (b[off] & 0xFF) | (b[off + 1] & 0xFF) << 8 | (b[off + 2] & 0xFF) << 16 | (b[off + 3] & 0xFF) << 24;
    }

    private static void store32(byte[] b, int off, int v, int[] writes) {
        for (int i = 0; i < 4; i++) {
            b[off + i] = (byte) (v >>> (8 * i));
            writes[off + i]++;
        }
    }

    /** The key whose probability the A fragment puts at column j of 32-key step kk (the P packing's order). */
    static int keyAt(int kk, int j) {
        return 32 * kk + 16 * (j >> 4) + 2 * ((j & 15) >> 2) + (j & 1) + 8 * ((j >> 1) & 1);
    }

    @Test
    void transposeV8WritesEveryByteOfVtOnceInThePackingsKeyOrderWithoutBankConflicts() {
        SplittableRandom r = new SplittableRandom(3);
        byte[][] v = new byte[KC][D];
        byte[] raw = new byte[KC * D];
        for (int k = 0; k < KC; k++) {
            for (int d = 0; d < D; d++) {
                v[k][d] = (byte) r.nextInt(256);
                raw[swz(k, d / 16, 64) + d % 16] = v[k][d];
            }
        }
        byte[] vt = new byte[KC * D];
        int[] writes = new int[KC * D];
        // banks[u][e] collects the 32 lanes' banks of the u-th iteration's e-th load (or store)
        @SuppressWarnings("unchecked")
        Set<Integer>[][] loadBanks = new Set[16][4];
        @SuppressWarnings("unchecked")
        Set<Integer>[][] storeBanks = new Set[16][4];
        for (int u = 0; u < 16; u++) {
            for (int e = 0; e < 4; e++) {
                loadBanks[u][e] = new HashSet<>();
                storeBanks[u][e] = new HashSet<>();
            }
        }
        for (int lane = 0; lane < 32; lane++) {
            int a = lane & 3;
            int b = lane >> 2;
            int rot = b >> 1;
            for (int u = 0; u < 16; u++) {
                int p4 = (u & 3) * 4 + a;
                int dq = (u >> 2) * 8 + b;
                int k0 = (p4 >> 2) * 16 + 2 * (p4 & 3);
                int c = dq >> 2;
                int w = (dq & 3) * 4;
                int[] keys = {k0, k0 + 1, k0 + 8, k0 + 9};
                int[] word = new int[4];
                for (int e = 0; e < 4; e++) {
                    int off = swz(keys[e], c, 64) + w;
                    loadBanks[u][e].add((off >> 2) & 31);
                    word[e] = load32(raw, off);
                }
                int x01 = bytePerm(word[0], word[1], 0x5140);
                int x23 = bytePerm(word[2], word[3], 0x5140);
                int y01 = bytePerm(word[0], word[1], 0x7362);
                int y23 = bytePerm(word[2], word[3], 0x7362);
                int[] out = {bytePerm(x01, x23, 0x5410), bytePerm(x01, x23, 0x7632), bytePerm(y01, y23, 0x5410),
                        bytePerm(y01, y23, 0x7632)};
                int n0 = 4 * dq;
                for (int i = 0; i < 4; i++) {
                    // store i writes dim n0 + ((i + rot) & 3), whose word is out[(i + rot) & 3]
                    int dim = (i + rot) & 3;
                    int off = vtOffset(n0 + dim, 4 * p4);
                    storeBanks[u][i].add((off >> 2) & 31);
                    store32(vt, off, out[dim], writes);
                }
            }
        }
        for (int i = 0; i < writes.length; i++) {
            assertEquals(1, writes[i], "byte " + i + " of Vᵀ");
        }
        for (int kk = 0; kk < 2; kk++) {
            for (int n = 0; n < D; n++) {
                for (int j = 0; j < 32; j++) {
                    assertEquals(v[keyAt(kk, j)][n], vt[vtOffset(n, 32 * kk + j)], "dim " + n + ", step " + kk + ", column " + j);
                }
            }
        }
        for (int u = 0; u < 16; u++) {
            for (int e = 0; e < 4; e++) {
                assertEquals(32, loadBanks[u][e].size(), "banks of load " + e + " in iteration " + u);
                assertEquals(32, storeBanks[u][e].size(), "banks of store " + e + " in iteration " + u);
            }
        }
    }

    @Test
    void thePackingsKeyOrderIsAPermutationOfEachStepsKeys() {
        for (int kk = 0; kk < 2; kk++) {
            Set<Integer> keys = new HashSet<>();
            for (int j = 0; j < 32; j++) {
                keys.add(keyAt(kk, j));
            }
            assertEquals(32, keys.size());
            assertEquals(32 * kk, keys.stream().mapToInt(Integer::intValue).min().orElseThrow());
            assertEquals(32 * kk + 31, keys.stream().mapToInt(Integer::intValue).max().orElseThrow());
        }
        // thread t of a quad: columns 4t..4t+3 take the accumulator's keys 2t, 2t+1 (n-block 4kk) and 8+2t, 9+2t
        // (n-block 4kk+1), the registers p[kk][0] packs
        for (int t = 0; t < 4; t++) {
            assertEquals(2 * t, keyAt(0, 4 * t));
            assertEquals(2 * t + 1, keyAt(0, 4 * t + 1));
            assertEquals(8 + 2 * t, keyAt(0, 4 * t + 2));
            assertEquals(9 + 2 * t, keyAt(0, 4 * t + 3));
            assertEquals(16 + 2 * t, keyAt(0, 16 + 4 * t));
        }
    }
}
