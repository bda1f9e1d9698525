package dev.sparsa.cli.fuzz;

import dev.sparsa.pattern.Pattern;
import dev.sparsa.patterns.Patterns;
import dev.sparsa.patterns.verticalslash.VsSemantics;
import dev.sparsa.plan.PlanContext;
import dev.sparsa.tensor.IndexTensor;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

/**
 * The patterns the fuzzer draws, each with parameters drawn from a seed (edges included: 1, the
 * sequence's length, far past it) and, where the pattern's definition is short, that definition
 * written here independently of the pattern's code, as a predicate on (batch, query head, query
 * row, key position), causality included.
 */
final class PatternSpecs {
    private PatternSpecs() {
    }

    /** A pattern and its independent definition (null where the fuzzer checks only invariants and the kernel). */
    record Built(Pattern pattern, Definition definition) {
    }

    /** A pattern's token set by definition. */
    @FunctionalInterface
    interface Definition {
        boolean admits(int batch, int head, int row, int key);
    }

    static final List<String> KINDS = List.of("dense", "window", "a-shape", "tri-shape", "symmetric", "neighbourhood",
            "dilated", "strided", "fixed", "s2", "random-blocks", "block-mask", "minference-blocks", "mean-pool-blocks",
            "sort-lsh", "reformer", "top-k", "top-k-per-block", "quest", "double-sparsity", "token-select",
            "vertical-slash-exact", "vertical-slash", "vertical-slash-estimate", "union", "global-tokens", "per-head",
            "moba", "nsa-selection", "dsa-indexer", "xattention", "routing", "block-top-p", "vertical-slash-top-p",
            "token-indices", "row-block-indices", "query-block-indices");

    /** A parameter: 1, small, about the sequence, or far past it. */
    private static int param(SplittableRandom rnd, int scale) {
        return switch (rnd.nextInt(6)) {
            case 0 -> 1;
            case 1 -> Integer.MAX_VALUE;
            case 2 -> Math.max(1, scale + rnd.nextInt(-1, 2));
            default -> 1 + rnd.nextInt(Math.max(1, scale));
        };
    }

    private static int[] distinct(SplittableRandom rnd, int count, int lo, int hi) {
        TreeSet<Integer> s = new TreeSet<>();
        for (int i = 0; i < count && hi > lo; i++) {
            s.add(rnd.nextInt(lo, hi));
        }
        return s.stream().mapToInt(Integer::intValue).toArray();
    }

    private static boolean contains(int[] sorted, long x) {
        return x >= Integer.MIN_VALUE && x <= Integer.MAX_VALUE && java.util.Arrays.binarySearch(sorted, (int) x) >= 0;
    }

    /** A cumulative-mass target: 1, a tiny one, or any in (0, 1). */
    private static double gamma(SplittableRandom rnd) {
        return switch (rnd.nextInt(4)) {
            case 0 -> 1.0;
            case 1 -> 1e-6;
            default -> Math.nextUp(rnd.nextDouble());
        };
    }

    /**
     * Caller-supplied index lists {@code [batch, 1 | kvHeads | qHeads, rows, width]} over {@code [0,
     * limit)}, with −1 padding, repeats, any order, optional lengths and, now and then, one entry out
     * of range (which planning must refuse by name); {@link #has} reads them as the definition does.
     */
    record Lists(IndexTensor indices, IndexTensor lengths, int[] data, int[] lens, int heads, int rows, int width,
                 int qHeads, int group) {
        /** Whether {@code value} is among the first {@code lens} entries of the list query head {@code h} reads. */
        boolean has(int b, int h, int row, long value) {
            int sh = heads == 1 ? 0 : heads == qHeads ? h : h / group;
            int list = (b * heads + sh) * rows + row;
            int n = lens == null ? width : lens[list];
            for (int i = 0; i < n; i++) {
                if (data[list * width + i] == value) {
                    return true;
                }
            }
            return false;
        }
    }

    private static Lists lists(SplittableRandom rnd, PlanContext ctx, int rows, int limit) {
        var s = ctx.shape();
        int[] headChoices = {1, s.kvHeads(), s.qHeads()};
        int heads = headChoices[rnd.nextInt(3)];
        int width = 1 + rnd.nextInt(rnd.nextInt(4) == 0 ? 24 : 6);
        int lists = s.batch() * heads * rows;
        int[] data = new int[lists * width];
        for (int i = 0; i < data.length; i++) {
            data[i] = limit == 0 || rnd.nextInt(5) == 0 ? -1 : rnd.nextInt(limit);
        }
        if (data.length > 0 && rnd.nextInt(20) == 0) {
            data[rnd.nextInt(data.length)] = rnd.nextBoolean() ? limit : -2; // refused, by name
        }
        int[] lens = null;
        if (rnd.nextInt(3) == 0) {
            lens = new int[lists];
            for (int i = 0; i < lists; i++) {
                lens[i] = rnd.nextInt(width + 1);
            }
        }
        return new Lists(IndexTensor.of(data, s.batch(), heads, rows, width),
                lens == null ? null : IndexTensor.of(lens, s.batch(), heads, rows, 1), data, lens, heads, rows, width,
                s.qHeads(), s.groupSize());
    }

    static Built build(int kind, long seed, PlanContext ctx) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int nq = ctx.queryLength();
        int nk = ctx.keyLength();
        int n = Math.max(nq, nk);
        long off = ctx.queryOffset();
        boolean causal = ctx.causal();
        String name = KINDS.get(kind);
        return switch (name) {
            case "dense" -> new Built(Patterns.dense(), (b, h, r, k) -> !causal || k <= r + off);
            case "window", "a-shape" -> {
                int w = param(rnd, n / 3 + 1);
                int s = name.equals("window") ? 0 : rnd.nextInt(4) == 0 ? Integer.MAX_VALUE : rnd.nextInt(8);
                yield new Built(Patterns.slidingWindow(w).withSinks(s), (b, h, r, k) -> {
                    long d = r + off - k;
                    return (!causal || d >= 0) && ((d >= 0 && d <= w - 1L) || k < s);
                });
            }
            case "tri-shape" -> {
                int w = param(rnd, n / 3 + 1);
                int s = rnd.nextInt(6);
                int last = param(rnd, nq / 4 + 1);
                yield new Built(Patterns.triShape(w, s, last), (b, h, r, k) -> {
                    long d = r + off - k;
                    boolean lastRow = r >= (long) nq - last;
                    return (!causal || d >= 0) && ((d >= 0 && d <= w - 1L) || k < s || lastRow);
                });
            }
            case "symmetric" -> {
                int radius = rnd.nextInt(3) == 0 ? 0 : param(rnd, n / 4 + 1);
                yield new Built(Patterns.symmetricWindow(radius), (b, h, r, k) -> {
                    long d = r + off - k;
                    return (!causal || d >= 0) && Math.abs(d) <= radius;
                });
            }
            case "neighbourhood" -> {
                int size = param(rnd, n / 3 + 1);
                yield new Built(Patterns.neighbourhood(size), (b, h, r, k) -> {
                    long p = r + off;
                    if (causal) {
                        return k <= p && p - k < size; // the size keys ending at the query
                    }
                    long start = Math.max(0, Math.min(p - size / 2, (long) nk - size));
                    return k >= start && k < start + size;
                });
            }
            case "dilated" -> {
                int keys = param(rnd, 8);
                int dil = param(rnd, 5);
                yield new Built(Patterns.dilatedWindow(keys, dil), (b, h, r, k) -> {
                    long d = r + off - k;
                    return d >= 0 && d % dil == 0 && d / dil < keys;
                });
            }
            case "strided" -> {
                int l = param(rnd, 9);
                yield new Built(Patterns.sparseTransformerStrided(l), (b, h, r, k) -> {
                    long d = r + off - k;
                    return (!causal || d >= 0) && ((d >= 0 && d < l) || Math.floorMod(d, (long) l) == 0);
                });
            }
            case "fixed" -> {
                int l = param(rnd, 9);
                int c = 1 + rnd.nextInt((int) Math.min(l, 12));
                yield new Built(Patterns.sparseTransformerFixed(l, c), (b, h, r, k) -> {
                    long p = r + off;
                    return (!causal || k <= p) && (Math.floorDiv(p, (long) l) == k / l || k % l >= l - c);
                });
            }
            case "s2" -> {
                int kvHeads = ctx.shape().kvHeads();
                boolean homogeneous = rnd.nextInt(4) == 0;
                int dense = homogeneous ? 0 : rnd.nextInt(kvHeads + 1);
                yield new Built(Patterns.s2Strided(param(rnd, 4), rnd.nextInt(3), rnd.nextInt(3), dense, homogeneous)
                        .withBlockSize(param(rnd, 16)).withHeadOffset(rnd.nextInt(-3, 4)), null);
            }
            case "random-blocks" -> new Built(Patterns.randomBlockSparse(rnd.nextDouble(), rnd.nextLong()), null);
            case "block-mask" -> {
                int bq = param(rnd, 16);
                int bk = param(rnd, 16);
                int qb = (int) ((nq + (long) bq - 1) / bq);
                int kb = (int) ((nk + (long) bk - 1) / bk);
                boolean[][] mask = new boolean[qb][kb];
                for (boolean[] row : mask) {
                    for (int j = 0; j < kb; j++) {
                        row[j] = rnd.nextInt(3) == 0;
                    }
                }
                boolean[][][] perHead = new boolean[][][] {mask};
                yield new Built(Patterns.blockSparse(perHead, bq, bk),
                        (b, h, r, k) -> (!causal || k <= r + off) && mask[r / bq][k / bk]);
            }
            case "minference-blocks" -> new Built(Patterns.minferenceBlockSparse(param(rnd, 4)), null);
            case "mean-pool-blocks" -> new Built(Patterns.meanPoolBlockTopK(param(rnd, 4), param(rnd, 16), rnd.nextBoolean()), null);
            case "sort-lsh" -> new Built(Patterns.sortLsh(1 + rnd.nextInt(8), param(rnd, 16), rnd.nextInt(3) == 0 ? 0
                    : param(rnd, 8), rnd.nextLong()), null);
            case "reformer" -> new Built(Patterns.reformerLsh(1 + rnd.nextInt(3), 1 + rnd.nextInt(8), param(rnd, 16),
                    rnd.nextLong()), null);
            case "top-k" -> new Built(Patterns.topK(param(rnd, 8), rnd.nextInt(4), rnd.nextInt(6)), null);
            case "top-k-per-block" -> new Built(rnd.nextBoolean()
                    ? Patterns.topKPerQueryBlock(param(rnd, 8), rnd.nextInt(4), rnd.nextInt(6))
                    : Patterns.topKPerQueryBlockExact(param(rnd, 8), rnd.nextInt(4), rnd.nextInt(6)), null);
            case "quest" -> {
                int page = param(rnd, 8);
                int budget = (int) Math.min(Integer.MAX_VALUE, (long) page * param(rnd, 4));
                yield new Built(Patterns.quest(page, budget, rnd.nextInt(3), rnd.nextInt(4)), null);
            }
            case "double-sparsity" -> new Built(Patterns.doubleSparsity(distinct(rnd, 1 + rnd.nextInt(6), 0,
                    ctx.shape().headDim()), param(rnd, 8), rnd.nextInt(3), rnd.nextInt(4)), null);
            case "token-select" -> new Built(Patterns.tokenSelect(param(rnd, 8), rnd.nextInt(3), rnd.nextInt(4)), null);
            case "vertical-slash-exact" -> {
                int[] cols = distinct(rnd, rnd.nextInt(10), 0, Math.max(1, nk + 3));
                int[] diags = distinct(rnd, rnd.nextInt(10), causal ? 0 : -n, n + 2);
                yield new Built(Patterns.verticalSlash(cols, diags, VsSemantics.EXACT), (b, h, r, k) -> {
                    long p = r + off;
                    return (!causal || k <= p) && (contains(cols, k) || contains(diags, p - k));
                });
            }
            case "vertical-slash" -> {
                int[] cols = distinct(rnd, rnd.nextInt(10), 0, Math.max(1, nk + 3));
                int[] diags = distinct(rnd, rnd.nextInt(10), causal ? 0 : -n, n + 2);
                yield new Built(Patterns.verticalSlash(cols, diags, rnd.nextBoolean() ? VsSemantics.BLOCK_EXPANDED
                        : VsSemantics.GRID_EXPANDED), null);
            }
            case "vertical-slash-estimate" -> new Built(Patterns.verticalSlashEstimate(param(rnd, 8), param(rnd, 8),
                    VsSemantics.values()[rnd.nextInt(VsSemantics.values().length)]), null);
            case "union" -> {
                Built a = build(1 + rnd.nextInt(8), rnd.nextLong(), ctx);
                Built c = build(1 + rnd.nextInt(8), rnd.nextLong(), ctx);
                Definition da = a.definition();
                Definition dc = c.definition();
                yield new Built(Patterns.union(a.pattern(), c.pattern()), da == null || dc == null ? null
                        : (b, h, r, k) -> da.admits(b, h, r, k) || dc.admits(b, h, r, k));
            }
            case "global-tokens" -> {
                // rows are absolute positions: draw them where this call's rows sit
                int first = (int) Math.clamp(off, 0, Integer.MAX_VALUE - (long) nq - 3);
                int[] rows = distinct(rnd, rnd.nextInt(4), first, first + Math.max(1, nq + 2));
                int[] cols = distinct(rnd, rnd.nextInt(4), 0, Math.max(1, nk + 2));
                yield new Built(Patterns.globalTokens(rows, cols),
                        (b, h, r, k) -> (!causal || k <= r + off) && (contains(rows, r + off) || contains(cols, k)));
            }
            case "per-head" -> {
                int heads = ctx.shape().qHeads();
                java.util.List<Pattern> list = new java.util.ArrayList<>();
                Definition[] defs = new Definition[heads];
                for (int h = 0; h < heads; h++) {
                    Built part = build(rnd.nextInt(9), rnd.nextLong(), ctx);
                    list.add(part.pattern());
                    defs[h] = part.definition();
                }
                boolean all = java.util.Arrays.stream(defs).allMatch(java.util.Objects::nonNull);
                yield new Built(Patterns.perHead(list), all ? (b, h, r, k) -> defs[h].admits(b, h, r, k) : null);
            }
            case "moba" -> new Built(Patterns.moba(param(rnd, 16), param(rnd, 4)), null);
            case "nsa-selection" -> new Built(Patterns.nsaSelection(param(rnd, 16), param(rnd, 4)), null);
            case "dsa-indexer" -> new Built(Patterns.lightningIndexerProjected(param(rnd, 16), 1 + rnd.nextInt(4),
                    8 * (1 + rnd.nextInt(4)), rnd.nextLong()), null);
            case "xattention" -> {
                int stride = param(rnd, 4);
                int blockSize = (int) Math.min(Integer.MAX_VALUE, (long) stride * (1 + rnd.nextInt(4)));
                double threshold = rnd.nextInt(4) == 0 ? 1.0 : rnd.nextDouble();
                yield new Built(Patterns.xAttention(blockSize, stride, threshold), null);
            }
            case "routing" -> new Built(Patterns.routing(1 + rnd.nextInt(6), param(rnd, n / 2 + 1), rnd.nextInt(4),
                    rnd.nextLong()), null);
            case "block-top-p" -> new Built(Patterns.meanPoolBlockTopP(gamma(rnd), param(rnd, 16)), null);
            case "vertical-slash-top-p" -> {
                int min = param(rnd, 8);
                int max = rnd.nextInt(3) == 0 ? min : (int) Math.min(Integer.MAX_VALUE, (long) min + param(rnd, 16));
                yield new Built(Patterns.verticalSlashEstimateTopP(gamma(rnd), min, max,
                        VsSemantics.values()[rnd.nextInt(VsSemantics.values().length)]), null);
            }
            case "token-indices" -> {
                Lists l = lists(rnd, ctx, nq, nk);
                yield new Built(Patterns.tokenIndices(l.indices(), l.lengths()),
                        (b, h, r, k) -> (!causal || k <= r + off) && l.has(b, h, r, k));
            }
            case "row-block-indices" -> {
                int size = param(rnd, 16);
                int blocks = (int) ((nk + (long) size - 1) / size);
                Lists l = lists(rnd, ctx, nq, blocks);
                yield new Built(Patterns.rowBlockIndices(l.indices(), l.lengths(), size),
                        (b, h, r, k) -> (!causal || k <= r + off) && l.has(b, h, r, k / size));
            }
            case "query-block-indices" -> {
                int qb = param(rnd, 16);
                int kb = param(rnd, 16);
                int blocks = (int) ((nk + (long) kb - 1) / kb);
                Lists l = lists(rnd, ctx, (int) ((nq + (long) qb - 1) / qb), blocks);
                yield new Built(Patterns.queryBlockIndices(l.indices(), l.lengths(), qb, kb),
                        (b, h, r, k) -> (!causal || k <= r + off) && l.has(b, h, r / qb, k / kb));
            }
            default -> throw new IllegalStateException("unknown pattern kind " + name);
        };
    }
}
