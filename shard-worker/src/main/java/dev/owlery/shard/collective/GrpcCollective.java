package dev.owlery.shard.collective;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.UnsafeByteOperations;
import dev.owlery.engine.parallel.Collective;
import dev.owlery.proto.internal.v1.CollectivePhase;
import dev.owlery.proto.internal.v1.Contribution;
import dev.owlery.proto.internal.v1.DType;
import dev.owlery.proto.internal.v1.ExchangeContributionsRequest;
import dev.owlery.proto.internal.v1.Tensor;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * The engine's {@link Collective} across the shards of one group, over ShardPeer streams: rank i
 * opens one ExchangeContributions stream to every rank j > i and accepts one from every j < i;
 * both directions carry contributions ({@link PeerLinks}). An all-reduce sends this rank's partial
 * to every peer, waits (bounded) for every peer's, and sums the partials in rank order 0..N-1
 * exactly as {@link dev.owlery.engine.parallel.InProcessGroup} does, so every rank, and the
 * in-process decoder, hold bit-identical sums. A broken stream, a timeout or a contribution that
 * does not fit breaks the group for good: the call fails with a {@link PeerLostException} naming
 * the peer, later calls fail at once, and this rank's streams are closed so its peers fail too.
 *
 * <p>Contributions are tagged with the step id given to {@link #beginStep}, their ordinal in the
 * step, and the layer and phase they stand for (the decoder all-reduces twice per layer: attention
 * output, then MLP output). Partials travel as little-endian F32 wrapping one reused buffer. One
 * thread (the shard's step thread) calls everything but {@link #lastStep}, {@link #isBroken} and
 * {@link #close}.
 *
 * <p>With a shared-memory folder configured, this rank writes each partial once into its own file
 * of host shared memory ({@link SharedSlots}), and the peers on its host that mapped it read it in
 * place; the pair's stream then carries only a partial too long for a slot. The sums, the tags and
 * the failures are the same on both paths: a slot whose tags do not fit breaks the group, and
 * waiting for a slot ends when the deadline passes or a peer's stream breaks.
 */
public final class GrpcCollective implements Collective, AutoCloseable {

  /** Counter of all-reduce bytes (serialized Contribution messages); tag {@code direction}. */
  public static final String BYTES = "owlery.shard.allreduce.bytes";
  /** Timer of all-reduces (sending plus waiting for every peer). */
  public static final String DURATION = "owlery.shard.allreduce.duration";
  /** Counter of partial bytes exchanged through shared memory; tag {@code direction} (written, read). */
  public static final String SHARED_BYTES = "owlery.shard.allreduce.shared.bytes";

  /**
   * Most floats in a shared-memory slot (16 MiB; 1,024 tokens of a 7B): the slots are allocated in
   * full at load, twice per rank; a longer partial (a long prompt's) goes as a message, whose fixed
   * cost is small next to its size. Decode, where that cost dominates, always fits.
   */
  static final int MAX_SLOT_FLOATS = 4 << 20;

  private static final System.Logger LOG = System.getLogger(GrpcCollective.class.getName());

  /** For {@link #beginStep}: the step's all-reduces are bounded by the all-reduce timeout only. */
  public static final long NO_DEADLINE = Long.MAX_VALUE;

  private static final int CONTRIBUTION_FIELD = ExchangeContributionsRequest.CONTRIBUTION_FIELD_NUMBER;

  private final PeerGroup group;
  private final PeerLinks links;
  private final int numLayers;
  private final int hiddenSize;
  private final long timeoutNanos;
  private final Counter bytesSent;
  private final Counter bytesReceived;
  private final Timer duration;
  private final Counter sharedWritten;
  private final Counter sharedRead;
  /** This rank's file of shared memory; null without one. */
  private final SharedSlots own;

  // Step-thread state.
  private final FloatBuffer[] partials;
  private final float[] healthValue = new float[1];
  private byte[] sendBytes = new byte[0];
  private FloatBuffer sendFloats = FloatBuffer.allocate(0);
  private long stepId = -1;
  /** When this step's all-reduces give up at the latest (System.nanoTime), whatever the timeout. */
  private long stepGiveUpAt;
  private int ordinal;
  private long stepPayloadSent;
  private long stepPayloadReceived;
  private long stepMessageSent;
  private long stepMessageReceived;
  private long stepNanos;
  /** All-reduces across two or more ranks so far: the sequence number of the shared-memory slots. */
  private long exchanges;
  /** Whether some peer reads this rank's partials from {@link #own}; set by {@link #connect}. */
  private boolean sharing;
  /** The file each peer's partials are read from, null where the pair exchanges messages; set by {@link #connect}. */
  private final SharedSlots[] peerFiles;
  private volatile StepTraffic lastStep = StepTraffic.NONE;

  /**
   * A collective for {@code group} of a decoder with {@code numLayers} layers of width {@code
   * hiddenSize} (they tag and shape the contributions) that runs at most {@code maxTokens} tokens
   * per step (they size the shared-memory slots). Not connected: call {@link #connect}. Where the
   * configured shared-memory folder refuses the file, the rank exchanges messages only, and says so.
   */
  public GrpcCollective(PeerGroup group, int numLayers, int hiddenSize, int maxTokens, CollectiveConfig config,
      MeterRegistry meters) {
    this.group = group;
    this.own = createSlots(group, config, (int) Math.min(MAX_SLOT_FLOATS, (long) Math.max(1, maxTokens) * hiddenSize));
    this.links = new PeerLinks(group, config, own);
    this.numLayers = numLayers;
    this.hiddenSize = hiddenSize;
    this.timeoutNanos = config.allReduceTimeout().toNanos();
    this.partials = new FloatBuffer[group.worldSize()];
    this.peerFiles = new SharedSlots[group.worldSize()];
    this.bytesSent = Counter.builder(BYTES).description("Bytes of all-reduce contributions exchanged with peers")
        .baseUnit("bytes").tag("direction", "sent").register(meters);
    this.bytesReceived = Counter.builder(BYTES).description("Bytes of all-reduce contributions exchanged with peers")
        .baseUnit("bytes").tag("direction", "received").register(meters);
    this.duration = Timer.builder(DURATION).description("All-reduce time: sending plus waiting for every peer")
        .register(meters);
    this.sharedWritten = Counter.builder(SHARED_BYTES).description("Partial bytes exchanged through shared memory")
        .baseUnit("bytes").tag("direction", "written").register(meters);
    this.sharedRead = Counter.builder(SHARED_BYTES).description("Partial bytes exchanged through shared memory")
        .baseUnit("bytes").tag("direction", "read").register(meters);
  }

  private static SharedSlots createSlots(PeerGroup group, CollectiveConfig config, int capacityFloats) {
    if (config.sharedMemoryDir() == null || group.worldSize() == 1) {
      return null;
    }
    try {
      return SharedSlots.create(config.sharedMemoryDir(), capacityFloats);
    } catch (RuntimeException e) {
      LOG.log(System.Logger.Level.WARNING, "tensor-parallel group {0} rank {1}: no shared memory for the all-reduce, "
          + "exchanging gRPC messages only: {2}", group.groupId(), group.rank(), e.getMessage());
      return null;
    }
  }

  /** Whether this rank reads {@code peer}'s partials from shared memory (after {@link #connect}). */
  public boolean sharesMemoryWith(int peer) {
    return peerFiles[peer] != null;
  }

  public PeerGroup group() {
    return group;
  }

  @Override
  public int rank() {
    return group.rank();
  }

  @Override
  public int size() {
    return group.worldSize();
  }

  /**
   * Forms the group: takes the streams lower ranks open through {@code peerService} (also those
   * that arrived before), opens one to every higher rank, and returns once every handshake is done.
   *
   * @throws PeerLostException naming the first peer without a handshake after the connect timeout,
   *     or one whose stream broke or whose handshake does not fit
   */
  public void connect(ShardPeerService peerService) {
    links.connect(peerService.hub());
    for (int p = 0; p < group.worldSize(); p++) {
      peerFiles[p] = links.peerSlots(p);
      sharing |= peerFiles[p] != null;
    }
  }

  /**
   * Starts the bookkeeping of step {@code id}: its contributions carry this id and count from
   * ordinal 0, and its all-reduces wait for peers until {@code giveUpAt} (System.nanoTime) at the
   * latest, even when the all-reduce timeout would allow longer ({@link #NO_DEADLINE}: no limit).
   */
  public void beginStep(long id, long giveUpAt) {
    stepId = id;
    stepGiveUpAt = giveUpAt;
    ordinal = 0;
    stepPayloadSent = 0;
    stepPayloadReceived = 0;
    stepMessageSent = 0;
    stepMessageReceived = 0;
    stepNanos = 0;
  }

  /** Ends the step begun last and publishes its traffic as {@link #lastStep()}. */
  public StepTraffic endStep() {
    StepTraffic traffic = new StepTraffic(stepId, ordinal, stepPayloadSent, stepPayloadReceived, stepMessageSent,
        stepMessageReceived, stepNanos);
    lastStep = traffic;
    return traffic;
  }

  /** The traffic of the last step ended; {@link StepTraffic#NONE} before any. Any thread. */
  public StepTraffic lastStep() {
    return lastStep;
  }

  /** Replaces {@code x[offset, offset + length)} by the sum over the ranks; the decoder's all-reduce. */
  @Override
  public void allReduceSum(float[] x, int offset, int length) {
    int layer = (ordinal / 2) % numLayers;
    CollectivePhase phase = ordinal % 2 == 0 ? CollectivePhase.COLLECTIVE_PHASE_ATTENTION_OUTPUT
        : CollectivePhase.COLLECTIVE_PHASE_MLP_OUTPUT;
    reduce(x, offset, length, layer, phase);
  }

  /** The health check's one-value all-reduce: the sum of every rank's {@code value}. */
  public float allReduceHealth(float value) {
    healthValue[0] = value;
    reduce(healthValue, 0, 1, 0, CollectivePhase.COLLECTIVE_PHASE_HEALTH);
    return healthValue[0];
  }

  private void reduce(float[] x, int offset, int length, int layer, CollectivePhase phase) {
    long start = System.nanoTime();
    int n = group.worldSize();
    if (n > 1) {
      requireHealthy();
      long deadline = start + timeoutNanos;
      if (stepGiveUpAt != NO_DEADLINE && stepGiveUpAt - deadline < 0) {
        deadline = stepGiveUpAt;
      }
      long seq = ++exchanges;
      boolean inSlot = sharing
          && own.publish(seq, stepId, ordinal, layer, phase.getNumber(), x, offset, length);
      if (inSlot) {
        sharedWritten.increment(4.0 * length);
      }
      Contribution mine = null;
      for (int p = 0; p < n; p++) {
        if (p != group.rank()) {
          if (inSlot && peerFiles[p] != null) {
            stepPayloadSent += 4L * length;
            continue;
          }
          mine = mine != null ? mine : contribution(x, offset, length, layer, phase);
          int messageBytes = CodedOutputStream.computeMessageSize(CONTRIBUTION_FIELD, mine);
          links.send(p, mine, start, deadline, stepId, ordinal);
          stepPayloadSent += 4L * length;
          stepMessageSent += messageBytes;
          bytesSent.increment(messageBytes);
        }
      }
      for (int p = 0; p < n; p++) {
        if (p != group.rank()) {
          SharedSlots theirSlots = peerFiles[p];
          if (theirSlots != null) {
            links.awaitShared(theirSlots, p, seq, start, deadline, stepId, ordinal);
            requireFits(p, theirSlots, seq, length, layer, phase);
            if (!theirSlots.viaStream(seq)) {
              partials[p] = theirSlots.partial(seq, length);
              stepPayloadReceived += 4L * length;
              sharedRead.increment(4.0 * length);
              continue;
            }
          }
          Contribution theirs = links.receive(p, start, deadline, stepId, ordinal);
          requireFits(p, theirs, length, layer, phase);
          partials[p] = theirs.getPartial().getData().asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN)
              .asFloatBuffer();
          int size = CodedOutputStream.computeMessageSize(CONTRIBUTION_FIELD, theirs);
          stepPayloadReceived += 4L * length;
          stepMessageReceived += size;
          bytesReceived.increment(size);
        }
      }
      sumInRankOrder(x, offset, length);
      Arrays.fill(partials, null);
      if (seq == 1 && own != null) {
        // every peer has sent a partial, so each has mapped this file (they map before connect returns)
        own.unlink();
      }
    }
    ordinal++;
    long elapsed = System.nanoTime() - start;
    stepNanos += elapsed;
    duration.record(elapsed, TimeUnit.NANOSECONDS);
  }

  /** {@code s = 0; s += partial_r} for r = 0..N-1, per element: InProcessGroup's order, bit for bit. */
  private void sumInRankOrder(float[] x, int offset, int length) {
    int n = group.worldSize();
    int self = group.rank();
    for (int i = 0; i < length; i++) {
      float s = 0f;
      for (int r = 0; r < n; r++) {
        s += r == self ? x[offset + i] : partials[r].get(i);
      }
      x[offset + i] = s;
    }
  }

  private Contribution contribution(float[] x, int offset, int length, int layer, CollectivePhase phase) {
    int bytes = Math.multiplyExact(length, 4);
    if (sendBytes.length < bytes) {
      sendBytes = new byte[bytes]; // grows to the largest step once, then reused
      sendFloats = ByteBuffer.wrap(sendBytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    }
    sendFloats.put(0, x, offset, length);
    Tensor.Builder partial = Tensor.newBuilder().setDtype(DType.DTYPE_F32);
    if (phase != CollectivePhase.COLLECTIVE_PHASE_HEALTH && length % hiddenSize == 0) {
      partial.addShape(length / hiddenSize).addShape(hiddenSize);
    } else {
      partial.addShape(length);
    }
    partial.setData(UnsafeByteOperations.unsafeWrap(sendBytes, 0, bytes));
    return Contribution.newBuilder().setStepId(stepId).setOrdinal(ordinal).setLayer(layer).setPhase(phase)
        .setPartial(partial).build();
  }

  private void requireFits(int peer, Contribution c, int length, int layer, CollectivePhase phase) {
    Tensor partial = c.getPartial();
    long elements = 1;
    for (long dim : partial.getShapeList()) {
      elements *= dim;
    }
    boolean fits = c.getStepId() == stepId && c.getOrdinal() == ordinal && c.getLayer() == layer
        && c.getPhase() == phase && partial.getDtype() == DType.DTYPE_F32 && elements == length
        && partial.getData().size() == 4L * length;
    if (!fits) {
      throw links.fail(new PeerLostException(peer, ("%s: peer %s sent a contribution that does not fit: step %d ordinal %d "
          + "layer %d %s, %s %s with %d data bytes; expected %d F32 values (%d bytes)").formatted(where(),
          group.describe(peer), c.getStepId(), c.getOrdinal(), c.getLayer(), c.getPhase(), partial.getDtype(),
          partial.getShapeList(), partial.getData().size(), length, 4L * length)));
    }
  }

  private void requireFits(int peer, SharedSlots slots, long seq, int length, int layer, CollectivePhase phase) {
    boolean fits = slots.stepId(seq) == stepId && slots.ordinal(seq) == ordinal && slots.layer(seq) == layer
        && slots.phase(seq) == phase.getNumber() && slots.length(seq) == length;
    if (!fits) {
      throw links.fail(new PeerLostException(peer, ("%s: peer %s wrote a partial that does not fit to shared memory: "
          + "step %d ordinal %d layer %d phase %d, %d values; expected %d values").formatted(where(),
          group.describe(peer), slots.stepId(seq), slots.ordinal(seq), slots.layer(seq), slots.phase(seq),
          slots.length(seq), length)));
    }
  }

  /** Where this rank is, for messages: group, rank, step, ordinal. */
  private String where() {
    return links.where(stepId, ordinal);
  }

  /** Whether the group is broken (every later call fails). Any thread. */
  public boolean isBroken() {
    return links.isBroken();
  }

  /**
   * Runs {@code action} once the group breaks (at once when it is broken already), on the thread
   * that breaks it: it must only hand work over, never block.
   */
  public void onBroken(Runnable action) {
    links.whenBroken().thenRun(action);
  }

  /**
   * Throws the group's failure when it is broken, naming the lost peer.
   *
   * @throws PeerLostException when broken
   */
  public void requireHealthy() {
    if (links.isBroken()) {
      throw links.failure();
    }
  }

  /** Leaves the group: breaks it (peers' steps fail), closes the streams and channels. Any thread. */
  @Override
  public void close() {
    links.close();
    if (own != null) {
      own.unlink();
    }
  }
}
