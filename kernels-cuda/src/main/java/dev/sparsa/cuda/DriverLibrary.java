package dev.sparsa.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;

/**
 * Entry points of the CUDA driver library that JCuda 12.0.0 does not bind, looked up in the library JCuda has
 * loaded ({@code libcuda.so.1}, {@code nvcuda.dll} on Windows) for calls through the JDK's foreign function API.
 * The lookup needs native access ({@code --enable-native-access}), as JCuda does.
 */
final class DriverLibrary {
    private DriverLibrary() {
    }

    /**
     * The address of driver function {@code symbol}.
     *
     * @param since the CUDA release that introduced it, for the message
     * @throws UnsupportedOperationException naming the function where the driver lacks it
     * @throws IllegalArgumentException where the driver library cannot be loaded
     * @throws IllegalCallerException where native access is refused
     */
    static MemorySegment find(String symbol, String since) {
        String lib = System.getProperty("os.name", "").startsWith("Windows") ? "nvcuda.dll" : "libcuda.so.1";
        return SymbolLookup.libraryLookup(lib, Arena.global()).find(symbol).orElseThrow(
                () -> new UnsupportedOperationException("the CUDA driver has no " + symbol + " (CUDA " + since + " or later)"));
    }
}
