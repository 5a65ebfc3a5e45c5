package dev.owlery.engine.checkpoint;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.owlery.engine.testing.AllocationBudget;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * Any bytes read as a state-dict pickle unpickle to a state dict or fail with a
 * {@link CheckpointException}, within a small allocation budget; the bare pickle gets the fuzzer
 * past the zip container. Corpus: {@code testdata/fuzz/pickle/} (docs/fuzzing.md).
 */
class RestrictedUnpicklerFuzzTest {

  private static final Path FILE = Path.of("fuzz.bin");
  private static final long BUDGET_BYTES = 32L << 20;

  @FuzzTest
  void load(byte[] bytes) {
    try {
      AllocationBudget.enforce(BUDGET_BYTES, arena -> TorchBinFile.stateDict(FILE,
          new RestrictedUnpickler(FILE, "archive/data.pkl", MemorySegment.ofArray(bytes).asReadOnly()).load()));
    } catch (CheckpointException refused) {
      // the documented failure
    }
  }
}
