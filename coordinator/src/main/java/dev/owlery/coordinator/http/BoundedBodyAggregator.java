package dev.owlery.coordinator.http;

import io.netty.channel.ChannelHandlerContext;
import io.netty.handler.codec.http.HttpMessage;
import io.netty.handler.codec.http.HttpObjectAggregator;

/** Aggregates a request's body up to a bound; a larger one is answered 413 in OpenAI's error shape and the connection closed. */
final class BoundedBodyAggregator extends HttpObjectAggregator {

  private final int maxBodyBytes;

  BoundedBodyAggregator(int maxBodyBytes) {
    super(maxBodyBytes);
    this.maxBodyBytes = maxBodyBytes;
  }

  @Override
  protected void handleOversizedMessage(ChannelHandlerContext ctx, HttpMessage oversized) {
    HttpResponses.sendError(ctx.channel(), OpenAiError.tooLarge(maxBodyBytes), false);
  }
}
