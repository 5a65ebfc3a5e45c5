package dev.owlery.cli.node;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code owlery shard-worker --peer-shared-memory}: a folder, off, or the default /dev/shm where it exists. */
class ShardWorkerSharedMemoryOptionTest {

  private static ShardWorkerCommand parse(String... args) {
    ShardWorkerCommand command = new ShardWorkerCommand();
    String[] all = new String[args.length + 2];
    all[0] = "--node-id";
    all[1] = "shard-0";
    System.arraycopy(args, 0, all, 2, args.length);
    new CommandLine(command).parseArgs(all);
    return command;
  }

  @Test
  void aFolderIsTakenOffIsNoneAndTheDefaultIsDevShmWhereItExists(@TempDir Path dir) {
    assertThat(parse("--peer-shared-memory", dir.toString()).peerSharedMemoryDir()).isEqualTo(dir);
    assertThat(parse("--peer-shared-memory=off").peerSharedMemoryDir()).isNull();
    Path devShm = Path.of("/dev/shm");
    assertThat(parse().peerSharedMemoryDir()).isEqualTo(devShm.toFile().isDirectory() ? devShm : null);
  }

  @Test
  void aFolderThatIsNotThereIsRefusedNamingIt(@TempDir Path dir) {
    ShardWorkerCommand command = parse("--peer-shared-memory", dir.resolve("missing").toString());

    assertThatThrownBy(command::peerSharedMemoryDir).isInstanceOf(CommandLine.ParameterException.class)
        .hasMessage("--peer-shared-memory must be a folder or off. Given: " + dir.resolve("missing") + " (no such folder)");
  }
}
