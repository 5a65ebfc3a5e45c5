package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.config.LlamaConfig;
import dev.owlery.engine.config.ModelConfig;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.sampling.Sampler;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.ReleaseSequencesRequest;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.ShardWorkerGrpc;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.shard.collective.StepTraffic;
import io.grpc.Status;
import io.micrometer.core.instrument.MeterRegistry;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Continuous batching on 2 real shard workers (stories260K, scalar kernels so that results compare
 * bit for bit): several sequences in one step run through one pass of the layers, block tables are
 * checked alike on every rank, and releases free blocks.
 */
class BatchedStepTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static LlamaConfig config;
  /** Prompts of cases 3, 4 and 2: 23, 13 and 5 tokens. */
  private static int[][] prompts;

  @BeforeAll
  static void open() throws IOException {
    dir = Fixtures.stories260k();
    config = ModelConfig.load(dir).text();
    JsonNode cases = new ObjectMapper().readTree(dir.getParent().resolve("expected.json").toFile()).get("cases");
    prompts = new int[3][];
    int[] caseIndexes = {3, 4, 2};
    for (int i = 0; i < 3; i++) {
      JsonNode ids = cases.get(caseIndexes[i]).get("prompt_ids");
      prompts[i] = new int[ids.size()];
      for (int k = 0; k < ids.size(); k++) {
        prompts[i][k] = ids.get(k).asInt();
      }
    }
  }

  private ShardGroup loadedGroup(String name) {
    ShardGroup group = ShardGroup.start(2, ShardWorkerConfig.defaults(), new ScalarKernels(), cleanup);
    group.load(dir, name, 64, 8);
    return group;
  }

  /** Rows of {@code ids} at positions from {@code first}, with blocks from {@code firstBlock} as table. */
  private static StepSequence rows(long sequenceId, int first, int firstBlock, int... ids) {
    StepSequence.Builder s = StepSequence.newBuilder().setSequenceId(sequenceId);
    for (int k = 0; k < ids.length; k++) {
      s.addTokenIds(ids[k]).addPositions(first + k).addModalities(Modality.MODALITY_TEXT);
    }
    return ShardGroup.withBlocks(s, firstBlock).build();
  }

  private static RunStepRequest.Builder step(long stepId, StepSequence... sequences) {
    return RunStepRequest.newBuilder().setStepId(stepId).addAllSequences(Arrays.asList(sequences));
  }

  private static double meter(ShardGroup group, int rank, String name) {
    return group.meters.get(rank).get(name).gauge().value();
  }

  @Test
  void threeSequencesInOneStepGetTheLogitsTheyGetInSoloStepsAndShareOnePairOfAllReducesPerLayer() {
    ShardGroup group = loadedGroup("batch");
    int vocab = config.vocabSize();
    // batched: sequences 0..2 with blocks 0.., 8.., 16..; solo: sequences 10..12 with blocks 24.., 32.., 40..
    int[] next = new int[3];
    long stepId = 1;
    List<StepTraffic> batchedDecode = new ArrayList<>();
    List<StepTraffic> soloDecode = new ArrayList<>();
    int[] positions = new int[3];
    int[][] pending = prompts.clone();
    for (int round = 0; round < 4; round++) {
      StepSequence[] batch = new StepSequence[3];
      for (int i = 0; i < 3; i++) {
        batch[i] = rows(i, positions[i], 8 * i, pending[i]);
      }
      float[] batched = ShardGroup.gatherLogits(group.step(step(stepId++, batch)), vocab);
      if (round > 0) {
        batchedDecode.add(group.servers.getFirst().lastStep());
      }
      for (int i = 0; i < 3; i++) {
        float[] solo = ShardGroup.gatherLogits(group.step(step(stepId++, rows(10 + i, positions[i], 24 + 8 * i,
            pending[i]))), vocab);
        if (round > 0) {
          soloDecode.add(group.servers.getFirst().lastStep());
        }
        assertThat(Arrays.copyOfRange(batched, i * vocab, (i + 1) * vocab)).as("round %d sequence %d", round, i)
            .containsExactly(solo);
        next[i] = Sampler.argmax(batched, i * vocab, vocab);
        positions[i] += pending[i].length;
        pending[i] = new int[] {next[i]};
      }
    }
    // stories260K: 5 layers, 2 all-reduces each, whatever the number of sequences; a decode step of
    // 3 sequences sends 3 rows of 64 floats per all-reduce where a solo one sends 1
    int layers = config.numLayers();
    for (int r = 0; r < 3; r++) {
      StepTraffic batched = batchedDecode.get(r);
      assertThat(batched.numAllReduces()).isEqualTo(2 * layers);
      assertThat(batched.payloadBytesSent()).isEqualTo(3L * 2 * layers * 64 * 4);
      for (int i = 0; i < 3; i++) {
        StepTraffic solo = soloDecode.get(3 * r + i);
        assertThat(solo.numAllReduces()).isEqualTo(2 * layers);
        assertThat(batched.payloadBytesSent()).isEqualTo(3 * solo.payloadBytesSent());
      }
    }
    // 6 sequences of 23+3, 13+3, 5+3 positions: 2 + 1 + 1 blocks each, twice
    assertThat(meter(group, 0, ShardWorkerService.KV_BLOCKS_USED)).isEqualTo(8);
    assertThat(meter(group, 1, ShardWorkerService.KV_BLOCKS_FREE)).isEqualTo(ShardGroup.NUM_KV_BLOCKS - 8);
    assertThat(group.meters.get(1).get(ShardWorkerService.STEP_DURATION).timer().count()).isEqualTo(16);
  }

  @Test
  void blockConflictsAreRefusedByEveryRankAndNothingRuns() {
    ShardGroup group = loadedGroup("conflicts");
    group.step(step(1, rows(1, 0, 0, prompts[2]), rows(2, 0, 1, prompts[1])));

    String held = "sequences[1] (sequence 3): block_ids[0] = 1 is already held by sequence 2; a block belongs to one sequence";
    assertRefused(group, step(2, rows(1, 5, 0, 9), rows(3, 0, 1, 7)), held);
    String sameStep = "sequences[1] (sequence 4): block_ids[0] = 5 is already given in this step to sequence 3; "
        + "a block belongs to one sequence";
    assertRefused(group, step(2, rows(3, 0, 5, 7), rows(4, 0, 5, 8)), sameStep);
    String changed = "sequences[0] (sequence 1): block_ids[0] must stay 0 (the table only grows). Given: 6";
    assertRefused(group, step(2, rows(1, 5, 6, 9)), changed);
    String twice = "sequences[0] (sequence 5): block_ids[1] = 7 is already given in this step to this sequence at "
        + "another index; a block belongs to one sequence";
    assertRefused(group, step(2, StepSequence.newBuilder(rows(5, 0, 7, prompts[0])).setBlockIds(1, 7).build()),
        twice);
    assertRefused(group, step(2, StepSequence.newBuilder(rows(1, 5, 0, 9)).clearBlockIds().build()),
        "sequences[0] (sequence 1): block_ids must hold the sequence's block table. Given: none");
    assertRefused(group, step(2, rows(1, 5, 64, 9)), "sequences[0] (sequence 1): block_ids[0] must be in [0, 64). Given: 64");

    // nothing ran: no all-reduce since step 1, no block taken, and the sequences go on where they were
    for (int r = 0; r < 2; r++) {
      assertThat(group.servers.get(r).lastStep().stepId()).isEqualTo(1);
      assertThat(meter(group, r, ShardWorkerService.KV_BLOCKS_USED)).isEqualTo(2);
    }
    List<RunStepResponse> next = group.step(step(2, rows(1, 5, 0, 9), rows(3, 0, 5, 7)));
    assertThat(next.getFirst().getTimings().getNumTokens()).isEqualTo(2);
    assertThat(meter(group, 0, ShardWorkerService.KV_BLOCKS_USED)).isEqualTo(3);
  }

  private static void assertRefused(ShardGroup group, RunStepRequest.Builder step, String message) {
    assertThat(group.stepStatuses(step)).as(message).allSatisfy(status -> {
      assertThat(status.getCode()).isEqualTo(Status.Code.INVALID_ARGUMENT);
      assertThat(status.getDescription()).isEqualTo(message);
    });
  }

  @Test
  void releasedSequencesFreeTheirBlocksForTheSameStepAndMayRestartAtPositionZero() {
    ShardGroup group = ShardGroup.start(2, ShardWorkerConfig.defaults(), new ScalarKernels(), cleanup);
    assertThat(meter(group, 0, ShardWorkerService.KV_BLOCKS_USED)).isZero();
    assertThat(meter(group, 0, ShardWorkerService.KV_BLOCKS_FREE)).isZero(); // no slice, no pool
    group.load(dir, "release", 64, 8);
    assertThat(meter(group, 0, ShardWorkerService.KV_BLOCKS_FREE)).isEqualTo(ShardGroup.NUM_KV_BLOCKS);
    int vocab = config.vocabSize();
    float[] first = ShardGroup.gatherLogits(group.step(step(1, rows(1, 0, 0, prompts[0]), rows(2, 0, 2,
        prompts[1]))), vocab);
    assertThat(meter(group, 1, ShardWorkerService.KV_BLOCKS_USED)).isEqualTo(3);

    // sequence 1 released by the step that gives its blocks 0 and 1 to sequence 3 and restarts it
    // at position 0 in blocks 4 and 5
    float[] again = ShardGroup.gatherLogits(group.step(step(2, rows(3, 0, 0, prompts[2]), rows(1, 0, 4, prompts[0]))
        .addReleasedSequenceIds(1).addReleasedSequenceIds(99)), vocab);
    assertThat(Arrays.copyOfRange(again, vocab, 2 * vocab)).as("sequence 1 restarted")
        .containsExactly(Arrays.copyOfRange(first, 0, vocab));
    for (int r = 0; r < 2; r++) {
      assertThat(meter(group, r, ShardWorkerService.KV_BLOCKS_USED)).isEqualTo(1 + 1 + 2);
    }

    for (int r = 0; r < 2; r++) {
      ShardWorkerGrpc.ShardWorkerBlockingStub stub = ShardWorkerGrpc.newBlockingStub(cleanup.register(
          io.grpc.netty.NettyChannelBuilder.forTarget(group.addresses.get(r)).usePlaintext().build()))
          .withDeadlineAfter(10, TimeUnit.SECONDS);
      assertThat(stub.releaseSequences(ReleaseSequencesRequest.newBuilder().addSequenceIds(1).addSequenceIds(2)
          .addSequenceIds(3).build()).getNumReleased()).isEqualTo(3);
      MeterRegistry meters = group.meters.get(r);
      assertThat(meters.get(ShardWorkerService.KV_BLOCKS_USED).gauge().value()).isZero();
      assertThat(meters.get(ShardWorkerService.KV_BLOCKS_FREE).gauge().value()).isEqualTo(ShardGroup.NUM_KV_BLOCKS);
    }
  }
}
