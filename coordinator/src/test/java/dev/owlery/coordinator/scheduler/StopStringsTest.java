package dev.owlery.coordinator.scheduler;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class StopStringsTest {

  @Test
  void textThatMayStartAStopStringIsHeldBackUntilItCannot() {
    StopStrings stops = new StopStrings(List.of("User:", "\n\n"));

    assertThat(stops.push("Hello Us")).isEqualTo("Hello ");
    assertThat(stops.push("eful")).isEqualTo("Useful");
    assertThat(stops.push("\n")).isEmpty();
    assertThat(stops.push("x")).isEqualTo("\nx");
    assertThat(stops.matched()).isNull();
  }

  @Test
  void theTextEndsBeforeTheEarliestStopString() {
    StopStrings stops = new StopStrings(List.of("END", "User:"));

    assertThat(stops.push("a Use")).isEqualTo("a ");
    assertThat(stops.push("r: b END")).isEmpty();
    assertThat(stops.matched()).isEqualTo("User:");
  }

  @Test
  void heldTextIsFlushedAtTheEndAndNoStopStringsPassEverything() {
    StopStrings stops = new StopStrings(List.of("STOP"));
    assertThat(stops.push("go ST")).isEqualTo("go ");
    assertThat(stops.flush()).isEqualTo("ST");

    assertThat(new StopStrings(List.of()).push("anything")).isEqualTo("anything");
  }
}
