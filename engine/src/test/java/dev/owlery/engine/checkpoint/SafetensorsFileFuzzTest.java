package dev.owlery.engine.checkpoint;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.owlery.engine.testing.AllocationBudget;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Any bytes read as a {@code .safetensors} file open or fail with a {@link CheckpointException},
 * within a small allocation budget. Corpus: {@code testdata/fuzz/safetensors/} (docs/fuzzing.md).
 */
class SafetensorsFileFuzzTest {

  private static final Path FILE = Path.of("fuzz.safetensors");
  private static final long BUDGET_BYTES = 32L << 20;

  @FuzzTest
  void read(byte[] bytes) {
    try {
      AllocationBudget.enforce(BUDGET_BYTES, arena -> SafetensorsFile.read(FILE, MemorySegment.ofArray(bytes).asReadOnly(), arena));
    } catch (CheckpointException refused) {
      // the documented failure
    }
  }
}
