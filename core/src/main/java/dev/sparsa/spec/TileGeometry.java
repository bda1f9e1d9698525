package dev.sparsa.spec;

/**
 * The tiling a plan is written in: {@code tileRows} query rows per tile and {@code blockCols} keys
 * per key block. Backends declare which geometries they run (the CPU kernel: any multiple of 8;
 * the GPU: 64×64 and 128×128) and refuse others by name.
 *
 * <p>Throws {@link IllegalArgumentException} if either size is not in [1, 4096]
 */
public record TileGeometry(int tileRows, int blockCols) {
    /** 64 query rows by 64 keys: FlashAttention's usual tile. */
    public static final TileGeometry DEFAULT = new TileGeometry(64, 64);

    public TileGeometry {
        if (tileRows < 1 || tileRows > 4096 || blockCols < 1 || blockCols > 4096) {
            throw new IllegalArgumentException("geometry: tileRows and blockCols must be in [1, 4096], got "
                    + tileRows + "x" + blockCols);
        }
    }

    /** Number of query tiles that cover {@code queryLength} rows. */
    public int tilesFor(int queryLength) {
        return (int) ((queryLength + (long) tileRows - 1) / tileRows);
    }

    /** Number of key blocks that cover {@code keyLength} keys. */
    public int blocksFor(int keyLength) {
        return (int) ((keyLength + (long) blockCols - 1) / blockCols);
    }

    @Override
    public String toString() {
        return tileRows + "x" + blockCols;
    }
}
