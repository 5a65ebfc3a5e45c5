package dev.owlery.coordinator.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpContent;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import java.nio.charset.StandardCharsets;

/** Writes JSON responses and server-sent events on a connection; safe to call from any thread (Netty queues the writes). */
final class HttpResponses {

  private static final ObjectMapper JSON = new ObjectMapper();

  private HttpResponses() {}

  static byte[] bytes(JsonNode body) {
    try {
      return JSON.writeValueAsBytes(body);
    } catch (JsonProcessingException e) {
      throw new IllegalStateException("a JSON tree failed to serialize", e);
    }
  }

  /** A whole JSON response; the connection stays open when {@code keepAlive}. */
  static ChannelFuture sendJson(Channel channel, int status, JsonNode body, boolean keepAlive) {
    byte[] bytes = bytes(body);
    FullHttpResponse response = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status),
        Unpooled.wrappedBuffer(bytes));
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, bytes.length);
    HttpUtil.setKeepAlive(response, keepAlive);
    ChannelFuture written = channel.writeAndFlush(response);
    if (!keepAlive) {
      written.addListener(ChannelFutureListener.CLOSE);
    }
    return written;
  }

  static ChannelFuture sendError(Channel channel, OpenAiError error, boolean keepAlive) {
    return sendJson(channel, error.httpStatus(), error.toJson(), keepAlive);
  }

  /** The head of a server-sent event stream (200, chunked). */
  static ChannelFuture startEvents(Channel channel, boolean keepAlive) {
    HttpResponse response = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    response.headers().set(HttpHeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .set(HttpHeaderNames.CACHE_CONTROL, HttpHeaderValues.NO_CACHE);
    HttpUtil.setTransferEncodingChunked(response, true);
    HttpUtil.setKeepAlive(response, keepAlive);
    return channel.writeAndFlush(response);
  }

  /** One event, {@code data: JSON} and a blank line, as OpenAI streams them. */
  static ChannelFuture sendEvent(Channel channel, JsonNode data) {
    return channel.writeAndFlush(event(data));
  }

  /** The closing {@code data: [DONE]} event and the end of the response. */
  static ChannelFuture endEvents(Channel channel, boolean keepAlive) {
    channel.write(new DefaultHttpContent(Unpooled.copiedBuffer("data: [DONE]\n\n", StandardCharsets.UTF_8)));
    ChannelFuture written = channel.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT);
    if (!keepAlive) {
      written.addListener(ChannelFutureListener.CLOSE);
    }
    return written;
  }

  /** An error after the stream started: one {@code data: {"error": ...}} event (which OpenAI's clients raise), then the end. */
  static ChannelFuture failEvents(Channel channel, OpenAiError error) {
    channel.write(event(error.toJson()));
    return channel.writeAndFlush(LastHttpContent.EMPTY_LAST_CONTENT).addListener(ChannelFutureListener.CLOSE);
  }

  private static HttpContent event(JsonNode data) {
    byte[] json = bytes(data);
    ByteBuf buffer = Unpooled.buffer(json.length + 8);
    buffer.writeBytes("data: ".getBytes(StandardCharsets.US_ASCII)).writeBytes(json)
        .writeBytes("\n\n".getBytes(StandardCharsets.US_ASCII));
    return new DefaultHttpContent(buffer);
  }
}
