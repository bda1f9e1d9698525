package dev.sparsa.tensor;

/**
 * Memory orders for attention tensors. Both describe the same logical [batch, heads, seq, dim]
 * view; only the strides differ, so a kernel never copies to change layout.
 */
public enum Layout {
    /** [batch][heads][seq][dim], contiguous: PyTorch's default for attention inputs. */
    BHSD,
    /** [batch][seq][heads][dim], contiguous: what a fused QKV projection produces. */
    BSHD;

    /** Element strides of the logical (b, h, s, d) axes for a contiguous tensor in this layout. */
    public long[] strides(int batch, int heads, int seq, int dim) {
        return switch (this) {
            case BHSD -> new long[] {(long) heads * seq * dim, (long) seq * dim, dim, 1};
            case BSHD -> new long[] {(long) seq * heads * dim, dim, (long) heads * dim, 1};
        };
    }
}
