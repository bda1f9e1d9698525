/**
 * Reading and writing arrays in the files Python tools write: NumPy's {@code .npy} ({@link Npy}) and
 * Hugging Face's {@code .safetensors} ({@link Safetensors}). Files are memory-mapped through the FFM
 * API, so an array in a supported type and C order becomes an {@link dev.sparsa.io.NdArray} and then
 * a {@link dev.sparsa.tensor.Tensor} without copying. Every malformed or unsupported file is refused
 * with a {@link dev.sparsa.io.TensorFileException} naming the file and the problem.
 */
package dev.sparsa.io;
