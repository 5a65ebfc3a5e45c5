/** Test support shared by the modules built on the cluster (published in the cluster test-jar). */
package dev.owlery.cluster.testing;
