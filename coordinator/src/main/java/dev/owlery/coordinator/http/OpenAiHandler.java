package dev.owlery.coordinator.http;

import io.netty.buffer.ByteBufUtil;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpUtil;
import java.util.logging.Level;
import java.util.logging.Logger;

/** One connection's handler: hands each whole request to the {@link OpenAiRoutes}; a broken connection is closed. */
final class OpenAiHandler extends SimpleChannelInboundHandler<FullHttpRequest> {

  private static final Logger LOG = Logger.getLogger(OpenAiHandler.class.getName());

  private final OpenAiRoutes routes;

  OpenAiHandler(OpenAiRoutes routes) {
    this.routes = routes;
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest request) {
    if (!request.decoderResult().isSuccess()) {
      HttpResponses.sendError(ctx.channel(), new OpenAiError(400, "invalid_request_error", null,
          "the HTTP request could not be read: " + request.decoderResult().cause().getMessage(), null), false);
      return;
    }
    String uri = request.uri();
    int query = uri.indexOf('?');
    String path = query < 0 ? uri : uri.substring(0, query);
    routes.serve(ctx.channel(), request.method().name(), path, request.headers().get(HttpHeaderNames.AUTHORIZATION),
        ByteBufUtil.getBytes(request.content()), HttpUtil.isKeepAlive(request));
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    LOG.log(Level.FINE, "HTTP connection closed after an error", cause);
    ctx.close();
  }
}
