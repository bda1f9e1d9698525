/** The Routing Transformer: balanced k-means clusters of queries and keys ({@link dev.sparsa.patterns.routing.RoutingAttention}). */
package dev.sparsa.patterns.routing;
