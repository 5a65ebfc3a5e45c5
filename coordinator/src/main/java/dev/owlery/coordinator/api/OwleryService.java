package dev.owlery.coordinator.api;

import com.google.protobuf.ByteString;
import dev.owlery.cluster.rpc.ExceptionStatusInterceptor;
import dev.owlery.coordinator.model.ServedModel;
import dev.owlery.coordinator.placement.GroupDirectory;
import dev.owlery.coordinator.placement.GroupStatus;
import dev.owlery.coordinator.placement.ImageEmbeddingCache;
import dev.owlery.coordinator.scheduler.GenerationJob;
import dev.owlery.coordinator.scheduler.GenerationMetrics;
import dev.owlery.coordinator.scheduler.GenerationSink;
import dev.owlery.coordinator.scheduler.Scheduler;
import dev.owlery.engine.tokenizer.ImageToken;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.GetClusterStatusRequest;
import dev.owlery.proto.v1.GetClusterStatusResponse;
import dev.owlery.proto.v1.ListModelsRequest;
import dev.owlery.proto.v1.ListModelsResponse;
import dev.owlery.proto.v1.NodeStatus;
import dev.owlery.proto.v1.OwleryGrpc;
import dev.owlery.proto.v1.TokenizeRequest;
import dev.owlery.proto.v1.TokenizeResponse;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The public {@code owlery.v1.Owlery} service. Generate validates the request on the gRPC thread,
 * admits it unless {@link ApiLimits#maxAdmittedRequests} calls are already in flight (then
 * RESOURCE_EXHAUSTED at once), takes its images' embeddings from the {@link ImageEmbeddingCache}
 * or a vision worker (asynchronously, in the request's context, so its deadline and cancellation
 * apply), and hands the job to the {@link Scheduler}; nothing here blocks.
 * Client cancellation is wired to the job, which stops at its next step. Exceptions become statuses
 * through the server's {@link ExceptionStatusInterceptor}.
 */
public final class OwleryService extends OwleryGrpc.OwleryImplBase {

  private final ServedModel model;
  private final RequestValidator validator;
  private final ImageEmbeddingCache images;
  private final Scheduler scheduler;
  private final GroupDirectory groups;
  private final Supplier<List<NodeStatus>> nodes;
  private final GenerationMetrics metrics;
  private final AtomicLong sequenceIds = new AtomicLong();
  private final AtomicInteger numAdmitted = new AtomicInteger();

  /**
   * @param nodes every node of the cluster, sorted by node id (the registry's view)
   */
  public OwleryService(ServedModel model, RequestValidator validator, ImageEmbeddingCache images, Scheduler scheduler,
      GroupDirectory groups, Supplier<List<NodeStatus>> nodes, GenerationMetrics metrics) {
    this.model = model;
    this.validator = validator;
    this.images = images;
    this.scheduler = scheduler;
    this.groups = groups;
    this.nodes = nodes;
    this.metrics = metrics;
    metrics.watchAdmitted(numAdmitted::get);
  }

  @Override
  public void generate(GenerateRequest request, StreamObserver<GenerateResponse> responses) {
    long arrivalNanos = System.nanoTime();
    ServerCallStreamObserver<GenerateResponse> call = (ServerCallStreamObserver<GenerateResponse>) responses;
    ValidatedRequest valid;
    try {
      valid = validator.validate(request);
    } catch (RuntimeException e) {
      metrics.finished(ExceptionStatusInterceptor.statusOf(e).getCode());
      throw e;
    }
    int maxAdmitted = validator.limits().maxAdmittedRequests();
    if (numAdmitted.incrementAndGet() > maxAdmitted) {
      numAdmitted.decrementAndGet();
      metrics.rejected(GenerationMetrics.Limit.MAX_ADMITTED_REQUESTS);
      metrics.finished(Status.Code.RESOURCE_EXHAUSTED);
      call.onError(Status.RESOURCE_EXHAUSTED.withDescription(
          "the coordinator already has %d requests in flight (maxAdmittedRequests %d); retry shortly"
              .formatted(maxAdmitted, maxAdmitted)).asRuntimeException());
      return;
    }
    AtomicBoolean ended = new AtomicBoolean();
    Runnable leave = () -> {
      if (ended.compareAndSet(false, true)) {
        numAdmitted.decrementAndGet();
      }
    };
    CompletableFuture<Void> cancelled = new CompletableFuture<>();
    call.setOnCancelHandler(() -> {
      leave.run();
      cancelled.complete(null);
      metrics.finished(Status.Code.CANCELLED);
    });
    StreamSink sink = new StreamSink(call, metrics, leave);
    long sequenceId = sequenceIds.incrementAndGet();
    if (valid.images().isEmpty()) {
      scheduler.submit(new GenerationJob(sequenceId, valid.sequence(), List.of(), arrivalNanos, sink, cancelled));
      return;
    }
    CompletableFuture<List<ByteString>> embeddings = images.encode(valid.images(), valid.aspectRatioPolicy());
    cancelled.whenComplete((done, error) -> embeddings.cancel(true));
    embeddings.whenComplete((rows, error) -> {
      if (error != null) {
        if (!cancelled.isDone()) {
          sink.onError(Status.fromThrowable(error));
        }
        return;
      }
      scheduler.submit(new GenerationJob(sequenceId, valid.sequence(), rows, arrivalNanos, sink, cancelled));
    });
  }

  @Override
  public void tokenize(TokenizeRequest request, StreamObserver<TokenizeResponse> responses) {
    validator.checkModel(request.getModel());
    String text = request.getText();
    // The placeholders the text holds are its images: the template adds none (owlery.proto).
    String prompt = RequestValidator.chatTemplate(request.getTemplate()).prompt(text, ImageToken.count(text));
    int[] ids = model.tokenizer().tokenizeImagePrompt(prompt);
    TokenizeResponse.Builder response = TokenizeResponse.newBuilder();
    for (int id : ids) {
      response.addTokenIds(id).addTokens(id == ImageToken.INDEX ? ImageToken.PLACEHOLDER : model.sentencePiece().piece(id));
    }
    responses.onNext(response.build());
    responses.onCompleted();
  }

  @Override
  public void listModels(ListModelsRequest request, StreamObserver<ListModelsResponse> responses) {
    responses.onNext(ListModelsResponse.newBuilder().addModels(model.toProto(groups.servingGroups().size())).build());
    responses.onCompleted();
  }

  @Override
  public void getClusterStatus(GetClusterStatusRequest request, StreamObserver<GetClusterStatusResponse> responses) {
    GetClusterStatusResponse.Builder status = GetClusterStatusResponse.newBuilder().addAllNodes(nodes.get());
    for (GroupStatus group : groups.groupStatuses()) {
      Scheduler.GroupLoad load = scheduler.load(group.groupId());
      status.addGroups(group.toProto(model.name()).setNumWaitingSequences(load.numWaitingSequences())
          .setNumRunningSequences(load.numRunningSequences()).setNumKvBlocks(load.numKvBlocks())
          .setNumFreeKvBlocks(load.numFreeKvBlocks()));
    }
    responses.onNext(status.setScheduler(scheduler.status()).build());
    responses.onCompleted();
  }

  /** Writes a sequence's output to its Generate stream (one writer at a time: the sequence's thread). */
  private record StreamSink(ServerCallStreamObserver<GenerateResponse> call, GenerationMetrics metrics, Runnable leave)
      implements GenerationSink {

    @Override
    public void onDelta(GenerateDelta delta) {
      call.onNext(GenerateResponse.newBuilder().setDelta(delta).build());
    }

    @Override
    public void onFinish(GenerateFinish finish) {
      call.onNext(GenerateResponse.newBuilder().setFinish(finish).build());
      leave.run();
      call.onCompleted();
      metrics.finished(Status.Code.OK);
    }

    @Override
    public void onError(Status status) {
      leave.run();
      call.onError(status.asRuntimeException());
      metrics.finished(status.getCode());
    }
  }
}
