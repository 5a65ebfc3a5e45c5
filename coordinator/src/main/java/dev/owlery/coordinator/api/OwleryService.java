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
import io.grpc.Context;
import io.grpc.Deadline;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
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
 * Client cancellation and the deadline are wired to the job, which stops at its next step. Exceptions
 * become statuses through the server's {@link ExceptionStatusInterceptor}. Every call is counted once
 * in {@link GenerationMetrics#REQUESTS_COUNTER} with the status its client sees, whichever path ends it,
 * and its tokens are charged to its caller's API key ({@link ApiKeyInterceptor#CALLER}) as they are sent.
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
    GenerateCall call = new GenerateCall((ServerCallStreamObserver<GenerateResponse>) responses, Context.current());
    try {
      start(request, arrivalNanos, call);
    } catch (RuntimeException e) {
      // The interceptor turns it into the client's status; it is counted here, with every other ending.
      call.end(ExceptionStatusInterceptor.statusOf(e).getCode());
      call.cancelled.complete(null);
      throw e;
    }
  }

  /** Validates, admits and hands the request to the scheduler (after its images are encoded). */
  private void start(GenerateRequest request, long arrivalNanos, GenerateCall call) {
    ValidatedRequest valid = validator.validate(request);
    int maxAdmitted = validator.limits().maxAdmittedRequests();
    if (numAdmitted.incrementAndGet() > maxAdmitted) {
      numAdmitted.decrementAndGet();
      metrics.rejected(GenerationMetrics.Limit.MAX_ADMITTED_REQUESTS);
      call.onError(Status.RESOURCE_EXHAUSTED.withDescription(
          "the coordinator already has %d requests in flight (maxAdmittedRequests %d); retry shortly"
              .formatted(maxAdmitted, maxAdmitted)));
      return;
    }
    call.admitted = true;
    call.observer.setOnCancelHandler(call::onCancel);
    long sequenceId = sequenceIds.incrementAndGet();
    if (valid.images().isEmpty()) {
      scheduler.submit(new GenerationJob(sequenceId, valid.sequence(), List.of(), arrivalNanos, call, call.cancelled));
      return;
    }
    CompletableFuture<List<ByteString>> embeddings = images.encode(valid.images(), valid.aspectRatioPolicy());
    call.cancelled.whenComplete((done, error) -> embeddings.cancel(true));
    embeddings.whenComplete((rows, error) -> {
      try {
        if (error != null) {
          call.onError(Status.fromThrowable(error));
          return;
        }
        scheduler.submit(new GenerationJob(sequenceId, valid.sequence(), rows, arrivalNanos, call, call.cancelled));
      } catch (RuntimeException e) {
        call.onError(ExceptionStatusInterceptor.statusOf(e));
      }
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

  /**
   * One Generate call: writes its sequence's output to the stream (one writer at a time: the
   * sequence's thread) and ends it exactly once — finish, error, client cancellation or deadline,
   * whichever comes first — giving its admission back and counting its outcome.
   */
  private final class GenerateCall implements GenerationSink {

    /**
     * A cancellation this close to the call's deadline is the deadline's: the client's timer fires at
     * its deadline and cancels the stream, and the server's copy of the deadline trails the client's
     * by the time the request's headers took to arrive, so the client's cancel often comes first.
     */
    private static final long DEADLINE_SLACK_NANOS = TimeUnit.MILLISECONDS.toNanos(100);

    private final ServerCallStreamObserver<GenerateResponse> observer;
    private final Context context;
    /** The caller's API key: charged for the tokens sent, and its id tags the outcome. */
    private final ApiKey key;
    private final AtomicBoolean ended = new AtomicBoolean();
    /** Completed when the client cancelled or the deadline passed (or the call failed before the scheduler had it). */
    private final CompletableFuture<Void> cancelled = new CompletableFuture<>();
    /** Set on the gRPC thread before anything can end the call from another thread. */
    private volatile boolean admitted;

    GenerateCall(ServerCallStreamObserver<GenerateResponse> observer, Context context) {
      this.observer = observer;
      this.context = context;
      this.key = ApiKeyInterceptor.CALLER.get(context);
    }

    /** True for the first ending only: gives the admission back and counts {@code outcome}. */
    boolean end(Status.Code outcome) {
      if (!ended.compareAndSet(false, true)) {
        return false;
      }
      if (admitted) {
        numAdmitted.decrementAndGet();
      }
      metrics.finished(outcome, key.id());
      return true;
    }

    /** The client cancelled, or the deadline passed (gRPC reports both as a cancellation). */
    void onCancel() {
      Deadline deadline = context.getDeadline();
      boolean deadlinePassed = deadline != null && deadline.timeRemaining(TimeUnit.NANOSECONDS) <= DEADLINE_SLACK_NANOS;
      end(deadlinePassed ? Status.Code.DEADLINE_EXCEEDED : Status.Code.CANCELLED);
      cancelled.complete(null);
    }

    @Override
    public void onDelta(GenerateDelta delta) {
      key.generated(delta.getTokenIdsCount());
      observer.onNext(GenerateResponse.newBuilder().setDelta(delta).build());
    }

    @Override
    public void onFinish(GenerateFinish finish) {
      if (end(Status.Code.OK)) {
        observer.onNext(GenerateResponse.newBuilder().setFinish(finish).build());
        observer.onCompleted();
      }
    }

    @Override
    public void onError(Status status) {
      if (end(status.getCode())) {
        observer.onError(status.asRuntimeException());
      }
    }
  }
}
