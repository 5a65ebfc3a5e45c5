package dev.owlery.shard.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.google.common.util.concurrent.ListenableFuture;
import dev.owlery.cluster.rpc.LostPeerTrailer;
import dev.owlery.cluster.testing.GrpcCleanup;
import dev.owlery.engine.kernel.ScalarKernels;
import dev.owlery.engine.testing.Fixtures;
import dev.owlery.proto.internal.v1.Modality;
import dev.owlery.proto.internal.v1.RunHealthStepRequest;
import dev.owlery.proto.internal.v1.RunStepRequest;
import dev.owlery.proto.internal.v1.RunStepResponse;
import dev.owlery.proto.internal.v1.StepSequence;
import dev.owlery.shard.collective.CollectiveConfig;
import dev.owlery.shard.collective.GrpcCollective;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/** A lost or silent peer fails the other ranks' steps with UNAVAILABLE naming it, within bounded time. */
class ShardFailureTest {

  @RegisterExtension final GrpcCleanup cleanup = new GrpcCleanup();

  private static Path dir;
  private static final ScalarKernels KERNELS = new ScalarKernels();

  @BeforeAll
  static void fixture() {
    dir = Fixtures.stories260k();
  }

  private static RunStepRequest prompt(ShardGroup group) {
    return RunStepRequest.newBuilder().setStepId(1).setGroupId(group.groupId()).setWorldSize(group.size())
        .addSequences(StepSequence.newBuilder().setSequenceId(1).addTokenIds(1).addPositions(0)
            .addModalities(Modality.MODALITY_TEXT).addBlockIds(0))
        .build();
  }

  private static double sentBytes(ShardGroup group, int rank) {
    return group.meters.get(rank).get(GrpcCollective.BYTES).tag("direction", "sent").counter().count();
  }

  private static StatusRuntimeException failureOf(ListenableFuture<?> call) {
    try {
      call.get(10, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      return (StatusRuntimeException) e.getCause();
    } catch (Exception e) {
      throw new AssertionError("the step neither failed nor finished within 10 s", e);
    }
    throw new AssertionError("the step succeeded though its peer is gone");
  }

  @Test
  void killingAPeerMidStepFailsTheOtherRankWithUnavailableNamingIt() {
    // all-reduce waits of 60 s: failing within 10 s proves the broken stream was noticed, not timed out
    ShardWorkerConfig config = ShardWorkerConfig.defaults()
        .withCollective(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofSeconds(60)));
    ShardGroup group = ShardGroup.start(2, config, KERNELS, cleanup);
    group.load(dir, "doomed", 16, 1);

    // only rank 0 runs the step: it sends its first contribution, then waits for rank 1's
    ListenableFuture<RunStepResponse> step = group.stub(0).runStep(prompt(group));
    await().atMost(Duration.ofSeconds(10)).until(() -> sentBytes(group, 0) > 0);
    assertThat(step.isDone()).isFalse();
    group.transports.get(1).shutdownNow(); // as a crash: no goodbye from rank 1's service

    StatusRuntimeException failure = failureOf(step);
    assertThat(failure.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(failure.getStatus().getDescription()).contains("rank 1 at " + group.addresses.get(1));
    assertThat(LostPeerTrailer.lostPeerRank(failure)).isEqualTo(1); // for the coordinator: rank 0 is alive
    // later calls fail at once, naming the same peer
    StatusRuntimeException later = failureOf(group.stub(0).runHealthStep(RunHealthStepRequest.newBuilder()
        .setStepId(2).setGroupId(group.groupId()).setWorldSize(2).build()));
    assertThat(later.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(later.getStatus().getDescription()).contains("rank 1 at " + group.addresses.get(1));
    assertThat(LostPeerTrailer.lostPeerRank(later)).isEqualTo(1);
  }

  @Test
  void aSilentPeerTimesOutTheAllReduceAndTheGroupBreaksOnEveryRank() {
    ShardWorkerConfig config = ShardWorkerConfig.defaults()
        .withCollective(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofMillis(300)));
    ShardGroup group = ShardGroup.start(2, config, KERNELS, cleanup);
    group.load(dir, "quiet", 16, 1);

    StatusRuntimeException failure = failureOf(group.stub(0).runStep(prompt(group)));
    assertThat(failure.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(failure.getStatus().getDescription())
        .contains("no contribution from peer rank 1 at " + group.addresses.get(1) + " within 300 ms");
    // rank 0 closed its streams: rank 1, which ran nothing, knows its group is gone
    await().atMost(Duration.ofSeconds(10)).untilAsserted(() -> {
      StatusRuntimeException onRank1 = failureOf(group.stub(1).runHealthStep(RunHealthStepRequest.newBuilder()
          .setStepId(5).setGroupId(group.groupId()).setWorldSize(2).build()));
      assertThat(onRank1.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
      assertThat(onRank1.getStatus().getDescription()).contains("lost peer rank 0 at " + group.addresses.get(0));
    });
  }

  @Test
  void aSilentPeerIsNamedBeforeTheCallersDeadlineThoughTheAllReduceTimeoutIsLonger() {
    // as behind a link that is down: rank 1 never contributes and no stream breaks
    ShardWorkerConfig config = ShardWorkerConfig.defaults()
        .withCollective(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofSeconds(60)));
    ShardGroup group = ShardGroup.start(2, config, KERNELS, cleanup);
    group.load(dir, "cut-off", 16, 1);

    StatusRuntimeException failure = failureOf(group.stub(0).withDeadlineAfter(2, TimeUnit.SECONDS)
        .runStep(prompt(group)));
    // not DEADLINE_EXCEEDED, which the silent rank's call gets too: the answer names the one to blame
    assertThat(failure.getStatus().getCode()).isEqualTo(Status.Code.UNAVAILABLE);
    assertThat(failure.getStatus().getDescription()).contains("no contribution from peer rank 1 at "
        + group.addresses.get(1) + " within 1");
    assertThat(LostPeerTrailer.lostPeerRank(failure)).isEqualTo(1);
  }

  @Test
  void aRankWhoseGroupBreaksFreesItsKvBlocksWithoutAnotherCall() {
    ShardGroup group = ShardGroup.start(2, ShardWorkerConfig.defaults(), KERNELS, cleanup);
    group.load(dir, "orphaned", 16, 1);
    group.step(prompt(group).toBuilder());
    assertThat(kvBlocksUsed(group, 0)).isEqualTo(1);

    group.transports.get(1).shutdownNow(); // rank 1 gone between steps: rank 0's stream breaks, no call comes

    await().atMost(Duration.ofSeconds(10)).until(() -> kvBlocksUsed(group, 0) == 0);
    // the group stays broken: a step still fails naming the lost peer
    StatusRuntimeException later = failureOf(group.stub(0).runStep(prompt(group).toBuilder().setStepId(2).build()));
    assertThat(LostPeerTrailer.lostPeerRank(later)).isEqualTo(1);
  }

  private static double kvBlocksUsed(ShardGroup group, int rank) {
    return group.meters.get(rank).get(ShardWorkerService.KV_BLOCKS_USED).gauge().value();
  }

  @Test
  void loadingAgainReformsABrokenGroup() {
    ShardWorkerConfig config = ShardWorkerConfig.defaults()
        .withCollective(CollectiveConfig.defaults().withAllReduceTimeout(Duration.ofMillis(300)));
    ShardGroup group = ShardGroup.start(2, config, KERNELS, cleanup);
    group.load(dir, "phoenix", 16, 1);
    failureOf(group.stub(0).runStep(prompt(group)));

    group.load(dir, "phoenix", 16, 1);
    assertThat(group.healthStep(1)).allSatisfy(answer -> assertThat(answer.getReducedValue()).isEqualTo(3f));
  }
}
