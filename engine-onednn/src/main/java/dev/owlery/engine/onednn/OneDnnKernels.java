package dev.owlery.engine.onednn;

import dev.owlery.engine.kernel.AttentionMask;
import dev.owlery.engine.kernel.AttentionShape;
import dev.owlery.engine.kernel.AttentionTime;
import dev.owlery.engine.kernel.ForwardingKernels;
import dev.owlery.engine.kernel.Kernels;
import dev.owlery.engine.kernel.KeyValueRows;
import dev.owlery.engine.kernel.VectorKernels;
import dev.owlery.engine.tensor.DType;
import dev.owlery.engine.tensor.Matrix;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The vector kernels with their many-token matmuls in BF16 on oneDNN: PyTorch's BF16 arithmetic
 * for linear layers (activations and weights rounded to bfloat16, products summed in float32, a
 * float32 output), on the CPU's AMX or AVX-512 BF16 units (on AMX here, the ViT's matmuls ran five
 * times as fast as the float32 vector kernels). A matmul of at least {@value #MIN_TOKENS} tokens goes to
 * {@code dnnl_gemm_bf16bf16f32}, and so do the two products of each head of an attention without a
 * mask ({@link OneDnnAttention}: the vision tower's and the abstractor's); fewer tokens (decode,
 * which is bound by memory, not arithmetic), causal attention and every other operation stay with
 * {@link VectorKernels} and are exact as they are there.
 *
 * <p>BF16 weights are read in place; weights of any other dtype are rounded to a BF16 copy on
 * their first many-token call, kept (off the heap) until {@link #close()}: two bytes per weight, so
 * {@code --weights bf16} saves both the copy and its first-call time. This is not the float32
 * arithmetic the scalar reference defines: each product carries bfloat16's 8-bit significands, as
 * it does in PyTorch's BF16 stack. Tests state the tolerance.
 */
public final class OneDnnKernels extends ForwardingKernels implements AutoCloseable {

  /** The fewest tokens a matmul needs to go to oneDNN. */
  public static final int MIN_TOKENS = 16;

  /** Activations below this many are rounded on the calling thread alone. */
  private static final int ROUNDING_CHUNK = 1 << 16;

  private final OneDnnLibrary library;
  private final VectorKernels vector;
  private final int numThreads;
  private final ThreadTeam team;
  private final OneDnnAttention attention;
  private final Arena weightArena = Arena.ofShared();
  private final Map<Matrix, MemorySegment> bf16Weights = new ConcurrentHashMap<>();
  private final ThreadLocal<short[]> activations = ThreadLocal.withInitial(() -> new short[0]);

  /**
   * Kernels on {@code numThreads} threads: oneDNN's OpenMP team of that size for the matmuls, the
   * vector kernels' pool of that size for the rest.
   *
   * @throws OneDnnUnavailableException when the system has no usable oneDNN
   */
  public OneDnnKernels(int numThreads) {
    this.library = OneDnnLibrary.load();
    this.vector = new VectorKernels(numThreads);
    this.numThreads = numThreads;
    this.team = new ThreadTeam(numThreads);
    this.attention = new OneDnnAttention(library, team);
  }

  /** The vector kernels, which take every call not overridden here. */
  @Override
  protected Kernels delegate() {
    return vector;
  }

  /** The oneDNN these kernels call. */
  public OneDnnLibrary library() {
    return library;
  }

  /** The threads each call uses. */
  public int numThreads() {
    return numThreads;
  }

  @Override
  public void matmul(Matrix w, float[] x, int xOffset, float[] out, int outOffset, int numTokens) {
    int n = w.rows();
    int k = w.cols();
    if (numTokens < MIN_TOKENS || n == 0 || k == 0) {
      vector.matmul(w, x, xOffset, out, outOffset, numTokens);
      return;
    }
    Objects.checkFromIndexSize(xOffset, (long) numTokens * k, x.length);
    Objects.checkFromIndexSize(outOffset, (long) numTokens * n, out.length);
    short[] a = activations(numTokens * k);
    roundActivations(x, xOffset, a, numTokens * k);
    MemorySegment b;
    long ldb;
    if (w.dtype() == DType.BF16) {
      b = w.data().asSlice(w.rowByteOffset(0));
      ldb = w.rowStride();
    } else {
      b = bf16Weights.computeIfAbsent(w, matrix -> Bf16.copy(matrix, weightArena));
      ldb = k;
    }
    MemorySegment c = MemorySegment.ofArray(out).asSlice((long) outOffset * Float.BYTES, (long) numTokens * n * Float.BYTES);
    library.gemmBf16TransposedB(numTokens, n, k, MemorySegment.ofArray(a), k, b, ldb, c, n, numThreads);
  }

  /**
   * Rounds a call's activations on every thread of the team, in chunks of whole vectors (the ViT's
   * fc2 rounds 4.2 million per call, which on the caller alone left the other threads waiting).
   */
  private void roundActivations(float[] x, int xOffset, short[] a, int size) {
    int parts = size < ROUNDING_CHUNK ? 1 : team.size();
    if (parts == 1) {
      Bf16.round(x, xOffset, a, 0, size);
      return;
    }
    int chunk = (size / parts + 63) & ~63;
    team.run(parts, part -> {
      int from = part * chunk;
      Bf16.round(x, xOffset + from, a, from, Math.max(0, Math.min(chunk, size - from)));
    });
  }

  private short[] activations(int size) {
    short[] a = activations.get();
    if (a.length < size) {
      a = new short[size];
      activations.set(a);
    }
    return a;
  }

  /** Bytes of the BF16 weight copies made so far. */
  public long copiedWeightBytes() {
    return bf16Weights.values().stream().mapToLong(MemorySegment::byteSize).sum();
  }

  /**
   * Without a mask and with at least {@value #MIN_TOKENS} queries and keys, in BF16 on oneDNN
   * ({@link OneDnnAttention}); otherwise (the decoder's causal attention, short calls) the vector
   * kernels'.
   */
  @Override
  public void attention(float[] q, int qOffset, KeyValueRows kv, AttentionShape shape, AttentionMask mask,
      int numQueries, int numKeys, float[] out, int outOffset) {
    if (mask != AttentionMask.NONE || numQueries < MIN_TOKENS || numKeys < MIN_TOKENS) {
      vector.attention(q, qOffset, kv, shape, mask, numQueries, numKeys, out, outOffset);
      return;
    }
    Objects.checkFromIndexSize(qOffset, (long) numQueries * shape.rowWidth(), q.length);
    Objects.checkFromIndexSize(outOffset, (long) numQueries * shape.rowWidth(), out.length);
    long start = System.nanoTime();
    attention.run(q, qOffset, kv, shape, numQueries, numKeys, out, outOffset);
    AttentionTime.add(System.nanoTime() - start);
  }

  /** The vector kernels' bias rows, with the tokens of a large call split over the team. */
  @Override
  public void addBias(float[] x, int xOffset, Matrix bias, int numTokens, int size) {
    if ((long) numTokens * size < ROUNDING_CHUNK || team.size() == 1) {
      vector.addBias(x, xOffset, bias, numTokens, size);
      return;
    }
    int parts = team.size();
    int tokensPerPart = (numTokens + parts - 1) / parts;
    team.run(parts, part -> {
      int first = part * tokensPerPart;
      int count = Math.min(tokensPerPart, numTokens - first);
      if (count > 0) {
        vector.addBias(x, xOffset + first * size, bias, count, size);
      }
    });
  }

  @Override
  public String name() {
    return "onednn-bf16";
  }

  /** Stops the vector kernels' threads and frees the BF16 weight copies; no call may be running. */
  @Override
  public void close() {
    vector.close();
    team.close();
    bf16Weights.clear();
    weightArena.close();
  }
}
