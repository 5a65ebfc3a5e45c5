package dev.owlery.shard.collective;

/**
 * What one rank exchanged with its peers during one step. Payload bytes are the F32 partials
 * alone; message bytes are the serialized protobuf messages carrying them (payload plus the
 * Contribution fields and the Tensor's dtype and shape; gRPC's 5-byte message prefix and HTTP/2
 * framing are not counted). Sent bytes count a message once per peer it went to.
 *
 * @param stepId the step, as RunStepRequest.step_id gave it
 * @param numAllReduces all-reduces run in the step
 * @param payloadBytesSent partial bytes sent to all peers together
 * @param payloadBytesReceived partial bytes received from all peers together
 * @param messageBytesSent serialized bytes of the messages sent
 * @param messageBytesReceived serialized bytes of the messages received
 * @param allReduceNanos time spent in all-reduces (sending plus waiting for peers)
 */
public record StepTraffic(
    long stepId,
    int numAllReduces,
    long payloadBytesSent,
    long payloadBytesReceived,
    long messageBytesSent,
    long messageBytesReceived,
    long allReduceNanos) {

  /** Before any step. */
  public static final StepTraffic NONE = new StepTraffic(-1, 0, 0, 0, 0, 0, 0);
}
