package dev.owlery.coordinator.http;

import io.grpc.ManagedChannel;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.HttpServerCodec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The OpenAI-compatible HTTP API on Netty: {@code POST /v1/chat/completions}, {@code POST
 * /v1/completions}, {@code GET /v1/models} and {@code GET /health}, each request turned into a call
 * on {@code owlery} — a channel to the coordinator's own {@code owlery.v1.Owlery} service (with its
 * API-key interceptor) and health service — so that HTTP callers are validated, admitted, scheduled,
 * limited and counted exactly as gRPC callers are. The {@code Authorization: Bearer KEY} header
 * travels as the call's {@code authorization} metadata. {@link #close()} stops listening, closes the
 * open connections (cancelling their calls) and waits a bounded time.
 */
public final class OpenAiHttpServer implements AutoCloseable {

  private final EventLoopGroup group;
  private final Channel listening;
  private final ExecutorService parsing;
  private final ManagedChannel owlery;

  private OpenAiHttpServer(EventLoopGroup group, Channel listening, ExecutorService parsing, ManagedChannel owlery) {
    this.group = group;
    this.listening = listening;
    this.parsing = parsing;
    this.owlery = owlery;
  }

  /**
   * Listens on {@code host} at {@code config}'s port.
   *
   * @param owlery a channel to the coordinator's services; closed by {@link #close()}
   * @param modelName the served model's name, which responses carry
   * @param maxBodyBytes the largest request body taken (413 above it)
   * @param maxImageBytes the largest image fetched from a URL
   * @throws UncheckedIOException when the address cannot be bound
   */
  public static OpenAiHttpServer start(HttpApiConfig config, String host, ManagedChannel owlery, String modelName,
      int maxBodyBytes, int maxImageBytes) {
    ImageUrls imageUrls = new ImageUrls(config.imageUrlPrefixes(), maxImageBytes, HttpApiConfig.IMAGE_FETCH_TIMEOUT);
    EventLoopGroup group = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    // Bodies (an image's base64) are parsed off the event loop, one virtual thread per request.
    ExecutorService parsing = Executors.newVirtualThreadPerTaskExecutor();
    OpenAiRequestParser parser = new OpenAiRequestParser(maxBodyBytes, imageUrls);
    OpenAiRoutes routes = new OpenAiRoutes(owlery, parser, parsing, modelName, config.requestTimeout());
    try {
      Channel listening = new ServerBootstrap().group(group).channel(NioServerSocketChannel.class)
          .childHandler(new ChannelInitializer<SocketChannel>() {
            @Override
            protected void initChannel(SocketChannel channel) {
              channel.pipeline().addLast(new HttpServerCodec(), new BoundedBodyAggregator(maxBodyBytes),
                  new OpenAiHandler(routes));
            }
          })
          .bind(new InetSocketAddress(host, config.port())).syncUninterruptibly().channel();
      return new OpenAiHttpServer(group, listening, parsing, owlery);
    } catch (Exception e) { // Netty rethrows the bind's IOException undeclared
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      parsing.shutdownNow();
      owlery.shutdownNow();
      throw new UncheckedIOException("the HTTP API could not bind %s:%d: %s".formatted(host, config.port(),
          e.getMessage()), e instanceof IOException io ? io : new IOException(e));
    }
  }

  /** The port listened on (the chosen one when configured with 0). */
  public int port() {
    return ((InetSocketAddress) listening.localAddress()).getPort();
  }

  @Override
  public void close() {
    listening.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 5, TimeUnit.SECONDS).awaitUninterruptibly(10, TimeUnit.SECONDS);
    parsing.shutdownNow();
    owlery.shutdownNow();
    try {
      owlery.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
