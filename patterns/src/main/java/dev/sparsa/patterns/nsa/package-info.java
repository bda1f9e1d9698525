/**
 * Native Sparse Attention: the selected branch ({@link dev.sparsa.patterns.nsa.NsaSelection}), the compressed branch
 * and its compression, and the gated mix of the three branches ({@link dev.sparsa.patterns.nsa.NativeSparseAttention}).
 */
package dev.sparsa.patterns.nsa;
