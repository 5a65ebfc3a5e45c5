package dev.owlery.cli.node;

/**
 * A local cluster could not be started, in sentences a person can act on (a port in use, a node
 * that exited with its last lines); the commands print the message instead of a stack trace.
 */
public final class LocalClusterException extends IllegalStateException {

  public LocalClusterException(String message) {
    super(message);
  }
}
