/** XAttention: antidiagonal block scoring with a cumulative-mass threshold ({@link dev.sparsa.patterns.xattention.XAttention}). */
package dev.sparsa.patterns.xattention;
