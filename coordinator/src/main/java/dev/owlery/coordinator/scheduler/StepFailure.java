package dev.owlery.coordinator.scheduler;

import java.util.List;

/**
 * A step that failed on one or more ranks: which nodes are to blame (lost: no answer, broken
 * transport) and a sentence naming each with its address, rank and error.
 */
final class StepFailure extends Exception {

  private final List<String> lostNodeIds;

  StepFailure(List<String> lostNodeIds, String message) {
    super(message);
    this.lostNodeIds = List.copyOf(lostNodeIds);
  }

  List<String> lostNodeIds() {
    return lostNodeIds;
  }
}
