package dev.owlery.visionworker;

import com.google.protobuf.ByteString;
import com.google.protobuf.UnsafeByteOperations;
import dev.owlery.engine.vision.preprocess.AspectRatioPolicy;
import dev.owlery.engine.vision.preprocess.RgbImage;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.EncodeImagesRequest;
import dev.owlery.proto.internal.v1.EncodeImagesResponse;
import dev.owlery.proto.internal.v1.Tensor;
import dev.owlery.proto.internal.v1.VisionWorkerGrpc;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The {@code VisionWorker} service: checks a batch, then on the worker's encode executor decodes and
 * preprocesses each image and hands them to the model's {@link ImageEncoder} (vision transformer,
 * then abstractor; on a device in passes shared with other calls) and answers F32
 * {@code [numVisualTokens, hiddenSize]} tensors with the time each phase took. A bad image fails
 * the call with INVALID_ARGUMENT naming its index; a full queue with RESOURCE_EXHAUSTED; a draining
 * worker with UNAVAILABLE. gRPC threads only check and hand over.
 */
public final class VisionWorkerService extends VisionWorkerGrpc.VisionWorkerImplBase {

  /** Timer of each encode phase; tag {@code phase} = preprocess, vision, abstractor. */
  public static final String PHASE_TIMER = "owlery.vision.phase.duration";
  /** Counter of images encoded. */
  public static final String IMAGES_COUNTER = "owlery.vision.images";

  private final String nodeId;
  private final VisionModel model;
  private final int maxBatchSize;
  private final int maxImageBytes;
  private final Executor encodeExecutor;
  private final Timer preprocessTimer;
  private final Timer visionTimer;
  private final Timer abstractorTimer;
  private final Counter imagesCounter;
  private volatile boolean draining;

  /**
   * @param encodeExecutor runs the encodes; bounded, it rejects work it cannot queue
   */
  public VisionWorkerService(String nodeId, VisionModel model, int maxBatchSize, int maxImageBytes,
      Executor encodeExecutor, MeterRegistry meters) {
    this.nodeId = nodeId;
    this.model = model;
    this.maxBatchSize = maxBatchSize;
    this.maxImageBytes = maxImageBytes;
    this.encodeExecutor = encodeExecutor;
    this.preprocessTimer = phaseTimer(meters, "preprocess");
    this.visionTimer = phaseTimer(meters, "vision");
    this.abstractorTimer = phaseTimer(meters, "abstractor");
    this.imagesCounter = Counter.builder(IMAGES_COUNTER).description("Images encoded").register(meters);
  }

  private static Timer phaseTimer(MeterRegistry meters, String phase) {
    return Timer.builder(PHASE_TIMER).description("Time of one encode phase of one batch").tag("phase", phase)
        .register(meters);
  }

  /** From now on new calls fail with UNAVAILABLE (callers retry on another worker); running ones finish. */
  public void drain() {
    draining = true;
  }

  @Override
  public void encodeImages(EncodeImagesRequest request, StreamObserver<EncodeImagesResponse> responses) {
    if (draining) {
      throw Status.UNAVAILABLE.withDescription(
          "vision worker " + nodeId + " is draining; send the images to another vision worker").asRuntimeException();
    }
    checkBatch(request);
    AspectRatioPolicy policy = policyOf(request.getAspectRatioPolicy());
    Context context = Context.current();
    try {
      encodeExecutor.execute(context.wrap(() -> encode(request, policy, context, responses)));
    } catch (RejectedExecutionException e) {
      throw Status.RESOURCE_EXHAUSTED.withDescription(
          "vision worker " + nodeId + " has too many batches queued; retry shortly or on another vision worker")
          .asRuntimeException();
    }
  }

  private void checkBatch(EncodeImagesRequest request) {
    int numImages = request.getImagesCount();
    if (numImages < 1 || numImages > maxBatchSize) {
      throw new IllegalArgumentException(
          "images must hold 1..%d images. Given: %d".formatted(maxBatchSize, numImages));
    }
    for (int i = 0; i < numImages; i++) {
      int size = request.getImages(i).getData().size();
      if (size == 0) {
        throw new IllegalArgumentException("images[%d].data is empty; send the encoded image file".formatted(i));
      }
      if (size > maxImageBytes) {
        throw new IllegalArgumentException(
            "images[%d].data must be at most %d bytes. Given: %d bytes".formatted(i, maxImageBytes, size));
      }
    }
  }

  /** The engine's policy for the wire value; UNSPECIFIED is PAD (vision_worker.proto). */
  static AspectRatioPolicy policyOf(dev.owlery.proto.v1.AspectRatioPolicy policy) {
    return switch (policy) {
      case ASPECT_RATIO_POLICY_UNSPECIFIED, ASPECT_RATIO_POLICY_PAD -> AspectRatioPolicy.PAD;
      case ASPECT_RATIO_POLICY_RESIZE -> AspectRatioPolicy.RESIZE;
      case ASPECT_RATIO_POLICY_NONE -> AspectRatioPolicy.NONE;
      case UNRECOGNIZED -> throw new IllegalArgumentException(
          "aspect_ratio_policy must be one of UNSPECIFIED, PAD, RESIZE, NONE. Given: value " + policy.getNumber());
    };
  }

  private void encode(EncodeImagesRequest request, AspectRatioPolicy policy, Context context,
      StreamObserver<EncodeImagesResponse> responses) {
    if (context.isCancelled()) {
      return; // the caller gave up (deadline, cancel) while the batch waited
    }
    long start = System.nanoTime();
    List<float[]> pixels;
    try {
      pixels = preprocess(request, policy);
    } catch (RuntimeException e) {
      // The service's ExceptionStatusInterceptor turns the exception into its status.
      responses.onError(e);
      return;
    }
    long preprocessNs = System.nanoTime() - start;
    // On the host the tower runs here; on a device the call waits for a pass and is answered from its thread.
    model.encoder().encode(pixels).whenComplete((encoded, error) -> {
      if (error != null) {
        responses.onError(error instanceof RejectedExecutionException ? Status.RESOURCE_EXHAUSTED.withDescription(
            "vision worker " + nodeId + ": " + error.getMessage() + "; retry shortly or on another vision worker")
            .asRuntimeException() : error);
        return;
      }
      try {
        responses.onNext(respond(encoded, preprocessNs));
        responses.onCompleted();
      } catch (RuntimeException e) {
        responses.onError(e);
      }
    });
  }

  private List<float[]> preprocess(EncodeImagesRequest request, AspectRatioPolicy policy) {
    int numImages = request.getImagesCount();
    List<float[]> pixels = new ArrayList<>(numImages);
    for (int i = 0; i < numImages; i++) {
      try {
        // The decoder reads a byte[] (javax.imageio): the one copy of the file.
        RgbImage rgb = model.decoder().decode(request.getImages(i).getData().toByteArray());
        pixels.add(model.preprocessor().preprocess(rgb, policy).data());
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException("images[%d]: %s".formatted(i, e.getMessage()), e);
      }
    }
    return pixels;
  }

  private EncodeImagesResponse respond(ImageEncoder.Encoded encoded, long preprocessNs) {
    EncodeImagesResponse.Builder response = EncodeImagesResponse.newBuilder();
    for (float[] visualEmbeds : encoded.visualEmbeds()) {
      response.addImageEmbeddings(
          f32Tensor(visualEmbeds, model.encoder().numVisualTokens(), model.encoder().hiddenSize()));
    }
    preprocessTimer.record(preprocessNs, TimeUnit.NANOSECONDS);
    visionTimer.record(encoded.visionNs(), TimeUnit.NANOSECONDS);
    abstractorTimer.record(encoded.abstractorNs(), TimeUnit.NANOSECONDS);
    imagesCounter.increment(encoded.visualEmbeds().size());
    return response.setPreprocessNs(preprocessNs).setVisionForwardNs(encoded.visionNs())
        .setAbstractorForwardNs(encoded.abstractorNs()).build();
  }

  /** F32 {@code [rows, columns]}, little-endian, wrapped without a second copy. */
  static Tensor f32Tensor(float[] values, int rows, int columns) {
    if (values.length != rows * columns) {
      throw new IllegalStateException("visual embeddings hold %d floats, expected %d x %d"
          .formatted(values.length, rows, columns));
    }
    ByteBuffer bytes = ByteBuffer.allocate(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    bytes.asFloatBuffer().put(values);
    ByteString data = UnsafeByteOperations.unsafeWrap(bytes);
    return Tensor.newBuilder().setDtype(DType.DTYPE_F32).addShape(rows).addShape(columns).setData(data).build();
  }
}
