package dev.owlery.coordinator.http;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import org.junit.jupiter.api.Test;

/**
 * The HTTP status and body each Owlery status is answered with: the cases the cluster tests do not
 * reach on purpose (UNAVAILABLE needs every shard group gone, DEADLINE_EXCEEDED a step slower than
 * the request's deadline) are held here.
 */
class OpenAiErrorTest {

  @Test
  void eachStatusMapsToTheHttpStatusSayingWhoMustAct() {
    assertThat(OpenAiError.of(Status.INVALID_ARGUMENT.withDescription("bad")).httpStatus()).isEqualTo(400);
    assertThat(OpenAiError.of(Status.UNAUTHENTICATED).httpStatus()).isEqualTo(401);
    assertThat(OpenAiError.of(Status.NOT_FOUND).httpStatus()).isEqualTo(404);
    assertThat(OpenAiError.of(Status.RESOURCE_EXHAUSTED).httpStatus()).isEqualTo(429);
    assertThat(OpenAiError.of(Status.DEADLINE_EXCEEDED).httpStatus()).isEqualTo(504);
    assertThat(OpenAiError.of(Status.INTERNAL).httpStatus()).isEqualTo(500);
  }

  @Test
  void anUnavailableClusterIs503InOpenAisShapeWithTheCause() {
    OpenAiError error = OpenAiError.of(Status.UNAVAILABLE.withDescription(
        "no shard group of model tiny-owl2 was READY within PT30S: shard-1 was lost"));

    assertThat(error.httpStatus()).isEqualTo(503);
    assertThat(error.toJson().toString()).isEqualTo("{\"error\":{\"message\":\"no shard group of model tiny-owl2 was "
        + "READY within PT30S: shard-1 was lost\",\"type\":\"server_error\",\"param\":null,"
        + "\"code\":\"service_unavailable\"}}");
  }
}
