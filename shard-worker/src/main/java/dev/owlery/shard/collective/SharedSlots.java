package dev.owlery.shard.collective;

import dev.owlery.proto.internal.v1.SharedMemoryOffer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/**
 * One rank's all-reduce partials in a file of host shared memory, which the peers on its host map
 * and read instead of receiving the partials as gRPC messages (shard_peer.proto, {@code
 * SharedMemoryOffer}). The file holds a header and two slots; the partial of the rank's k-th
 * all-reduce goes to slot k mod 2 and is published by writing k into the slot's sequence field last
 * (release), which readers poll (acquire). Two slots are enough: a rank writes its (k+2)-th partial
 * only after its (k+1)-th all-reduce, which waited for every peer's (k+1)-th partial, and a peer
 * publishes that only after it has summed the k-th partials, so no reader is still in the slot.
 *
 * <p>The writer creates the file with owner-only permissions and every byte allocated up front (a
 * sparse file in a full tmpfs would fault on first touch), maps it, and unlinks it once every
 * peer has mapped it ({@link #unlink}); files left by processes that died before that are removed
 * by the next rank that creates one in the same folder.
 */
final class SharedSlots {

  static final String FILE_PREFIX = "owlery-tp-";
  private static final int MAGIC = 0x4f574c32; // "OWL2"
  private static final int HEADER_BYTES = 64;
  private static final int SLOT_HEADER_BYTES = 64;
  // file header
  private static final long MAGIC_AT = 0;
  private static final long CAPACITY_AT = 8;
  private static final long TOKEN_AT = 16;
  // slot header, from the slot's start
  private static final long SEQ_AT = 0;
  private static final long STEP_AT = 8;
  private static final long ORDINAL_AT = 16;
  private static final long LAYER_AT = 20;
  private static final long PHASE_AT = 24;
  private static final long LENGTH_AT = 28;
  private static final long VIA_STREAM_AT = 32;
  private static final VarHandle SEQ = ValueLayout.JAVA_LONG.varHandle();

  private final Path path;
  private final long token;
  private final int capacityFloats;
  private final MemorySegment file;

  private SharedSlots(Path path, long token, int capacityFloats, MemorySegment file) {
    this.path = path;
    this.token = token;
    this.capacityFloats = capacityFloats;
    this.file = file;
  }

  /**
   * Creates this rank's file in {@code dir}, with slots of {@code capacityFloats} floats each.
   *
   * @throws UncheckedIOException when the file cannot be created, allocated or mapped
   */
  static SharedSlots create(Path dir, int capacityFloats) {
    if (capacityFloats < 1) {
      throw new IllegalArgumentException("capacityFloats must be >= 1. Given: " + capacityFloats);
    }
    removeLeftovers(dir);
    long token = ThreadLocalRandom.current().nextLong();
    Path path = dir.resolve(FILE_PREFIX + ProcessHandle.current().pid() + "-" + HexFormat.of().toHexDigits(token));
    long size = HEADER_BYTES + 2 * slotBytes(capacityFloats);
    try {
      Files.createFile(path, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
        ByteBuffer zeros = ByteBuffer.allocateDirect(1 << 20);
        for (long at = 0; at < size; at += zeros.capacity()) {
          zeros.clear().limit((int) Math.min(zeros.capacity(), size - at));
          while (zeros.hasRemaining()) {
            channel.write(zeros, at + zeros.position());
          }
        }
        MemorySegment file = channel.map(FileChannel.MapMode.READ_WRITE, 0, size, Arena.ofAuto());
        file.set(ValueLayout.JAVA_LONG, CAPACITY_AT, capacityFloats);
        file.set(ValueLayout.JAVA_LONG, TOKEN_AT, token);
        file.set(ValueLayout.JAVA_INT, MAGIC_AT, MAGIC);
        return new SharedSlots(path, token, capacityFloats, file);
      }
    } catch (IOException | RuntimeException e) {
      try {
        Files.deleteIfExists(path);
      } catch (IOException ignored) {
        // nothing more to do: the folder refuses us
      }
      throw e instanceof IOException io ? new UncheckedIOException("cannot create " + path + ": " + io, io)
          : (RuntimeException) e;
    }
  }

  /**
   * Maps a peer's file for reading, checking that it is one (magic, {@code token}).
   *
   * @throws UncheckedIOException when it cannot be opened or is not the file offered
   */
  static SharedSlots open(Path path, long token) {
    try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = channel.size();
      if (size < HEADER_BYTES) {
        throw new IOException("it holds " + size + " bytes, less than a header");
      }
      MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, Arena.ofAuto());
      long capacity = file.get(ValueLayout.JAVA_LONG, CAPACITY_AT);
      if (file.get(ValueLayout.JAVA_INT, MAGIC_AT) != MAGIC || file.get(ValueLayout.JAVA_LONG, TOKEN_AT) != token
          || capacity < 1 || capacity > Integer.MAX_VALUE || HEADER_BYTES + 2 * slotBytes((int) capacity) != size) {
        throw new IOException("it is not the file offered (magic, token or size differ)");
      }
      return new SharedSlots(path, token, (int) capacity, file);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot map " + path + ": " + e.getMessage(), e);
    }
  }

  private static long slotBytes(int capacityFloats) {
    return SLOT_HEADER_BYTES + 4L * capacityFloats;
  }

  /** Deletes the files of processes that are gone (killed before they unlinked theirs). */
  private static void removeLeftovers(Path dir) {
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, FILE_PREFIX + "*")) {
      for (Path file : files) {
        String name = file.getFileName().toString();
        int dash = name.indexOf('-', FILE_PREFIX.length());
        try {
          long pid = Long.parseLong(name.substring(FILE_PREFIX.length(), dash));
          if (ProcessHandle.of(pid).isEmpty()) {
            Files.deleteIfExists(file);
          }
        } catch (NumberFormatException | IndexOutOfBoundsException | IOException notOurs) {
          // a name we did not write, or one we may not delete: leave it
        }
      }
    } catch (IOException e) {
      // create() reports what is wrong with the folder
    }
  }

  /** What a peer's handshake offers: this file. */
  SharedMemoryOffer offer() {
    return SharedMemoryOffer.newBuilder().setPath(path.toString()).setToken(token).build();
  }

  Path path() {
    return path;
  }

  int capacityFloats() {
    return capacityFloats;
  }

  private long slot(long seq) {
    return HEADER_BYTES + (seq & 1) * slotBytes(capacityFloats);
  }

  /**
   * Writes this rank's {@code seq}-th partial and publishes it. A partial longer than a slot is
   * not written: the slot says it follows on the stream.
   *
   * @return whether the partial is in the slot
   */
  boolean publish(long seq, long stepId, int ordinal, int layer, int phase, float[] x, int offset, int length) {
    long at = slot(seq);
    boolean fits = length <= capacityFloats;
    if (fits) {
      MemorySegment.copy(x, offset, file, ValueLayout.JAVA_FLOAT, at + SLOT_HEADER_BYTES, length);
    }
    file.set(ValueLayout.JAVA_LONG, at + STEP_AT, stepId);
    file.set(ValueLayout.JAVA_INT, at + ORDINAL_AT, ordinal);
    file.set(ValueLayout.JAVA_INT, at + LAYER_AT, layer);
    file.set(ValueLayout.JAVA_INT, at + PHASE_AT, phase);
    file.set(ValueLayout.JAVA_INT, at + LENGTH_AT, length);
    file.set(ValueLayout.JAVA_INT, at + VIA_STREAM_AT, fits ? 0 : 1);
    SEQ.setRelease(file, at + SEQ_AT, seq);
    return fits;
  }

  /** Whether the peer has published its {@code seq}-th partial (acquire: its fields are then visible). */
  boolean published(long seq) {
    return (long) SEQ.getAcquire(file, slot(seq) + SEQ_AT) == seq;
  }

  long stepId(long seq) {
    return file.get(ValueLayout.JAVA_LONG, slot(seq) + STEP_AT);
  }

  int ordinal(long seq) {
    return file.get(ValueLayout.JAVA_INT, slot(seq) + ORDINAL_AT);
  }

  int layer(long seq) {
    return file.get(ValueLayout.JAVA_INT, slot(seq) + LAYER_AT);
  }

  int phase(long seq) {
    return file.get(ValueLayout.JAVA_INT, slot(seq) + PHASE_AT);
  }

  int length(long seq) {
    return file.get(ValueLayout.JAVA_INT, slot(seq) + LENGTH_AT);
  }

  /** Whether the {@code seq}-th partial follows on the stream (it did not fit the slot). */
  boolean viaStream(long seq) {
    return file.get(ValueLayout.JAVA_INT, slot(seq) + VIA_STREAM_AT) != 0;
  }

  /** The {@code seq}-th partial in place, {@code length} floats; valid until the peer's next-but-one partial. */
  FloatBuffer partial(long seq, int length) {
    return file.asSlice(slot(seq) + SLOT_HEADER_BYTES, 4L * length).asByteBuffer().order(ByteOrder.nativeOrder())
        .asFloatBuffer();
  }

  /** Removes the file's name (peers that mapped it keep their mapping). */
  void unlink() {
    try {
      Files.deleteIfExists(path);
    } catch (IOException e) {
      // the leftover is removed by the next rank that creates a file in this folder once we exit
    }
  }
}
