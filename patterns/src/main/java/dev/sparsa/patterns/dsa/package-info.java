/** DeepSeek Sparse Attention's lightning indexer and its inputs ({@link dev.sparsa.patterns.dsa.LightningIndexer}). */
package dev.sparsa.patterns.dsa;
