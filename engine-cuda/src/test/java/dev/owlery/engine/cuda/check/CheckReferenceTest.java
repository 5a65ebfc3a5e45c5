package dev.owlery.engine.cuda.check;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.owlery.engine.cuda.check.ElementwiseCases.AddRmsNormCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.EmbeddingCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.ResidualAddCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.RmsNormCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.RopeCase;
import dev.owlery.engine.cuda.check.ElementwiseCases.SiluMulCase;
import dev.owlery.engine.cuda.check.KernelCase.Expected;
import dev.owlery.engine.cuda.check.VisionCases.AddTableCase;
import dev.owlery.engine.cuda.check.VisionCases.FullAttentionCase;
import dev.owlery.engine.cuda.check.VisionCases.LayerNormCase;
import dev.owlery.engine.cuda.check.VisionCases.QuickGeluCase;
import dev.owlery.engine.cuda.ptx.PtxKernel;
import dev.owlery.engine.cuda.ptx.PtxKernels;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The CPU side of every kernel check compares the right thing: for each case of the real check list,
 * a plain float64 loop reads the arrays the device would be given, exactly as the kernel's source
 * comment lays them out (weight bits, the paged pool by block table and slot, the -1-padded tables,
 * rowSeq and rowPos, the modality per row, the cos/sin tables), and must reproduce the engine's
 * answer that the device is held to. A check whose device inputs and engine reference disagreed (a
 * pool filled at other slots, tables in another order, another weight copy) fails here, without a GPU.
 */
class CheckReferenceTest {

  private static final List<KernelCase> CASES = CheckCases.all();

  @Test
  void everyKernelHasACase() {
    Set<String> checked = CASES.stream().map(KernelCase::kernel).collect(Collectors.toSet());
    assertThat(checked).containsExactlyInAnyOrderElementsOf(PtxKernels.ALL.stream().map(PtxKernel::name).toList());
  }

  @Test
  void embeddingReferenceIsTheTableRowOfEachId() {
    for (EmbeddingCase c : cases(EmbeddingCase.class)) {
      Weights w = c.table();
      float[] expected = c.expected().values();
      for (int t = 0; t < c.ids().length; t++) {
        for (int col = 0; col < w.cols(); col++) {
          assertThat(expected[t * w.cols() + col]).isEqualTo(element(w, c.ids()[t], col));
        }
      }
    }
  }

  @Test
  void rmsNormReferenceUsesTheWeightCopyOfEachRowsModality() {
    for (RmsNormCase c : cases(RmsNormCase.class)) {
      float[] expected = c.expected().values();
      int hidden = c.hidden();
      for (int t = 0; t < c.modality().length; t++) {
        int copy = c.numModalities() == 1 ? 0 : c.modality()[t];
        double sumSquares = 0;
        for (int i = 0; i < hidden; i++) {
          sumSquares += (double) c.x()[t * hidden + i] * c.x()[t * hidden + i];
        }
        double scale = 1 / Math.sqrt(sumSquares / hidden + c.eps());
        for (int i = 0; i < hidden; i++) {
          double out = c.weights()[copy * hidden + i] * c.x()[t * hidden + i] * scale;
          assertThat((double) expected[t * hidden + i]).isCloseTo(out, within(1e-5 * Math.abs(out) + 1e-7));
        }
      }
    }
  }

  @Test
  void addRmsNormReferenceIsTheNewResidualThenItsNorm() {
    for (AddRmsNormCase c : cases(AddRmsNormCase.class)) {
      RmsNormCase norm = c.norm();
      int hidden = norm.hidden();
      int n = c.residual().length;
      float[] expected = c.expected().values();
      for (int t = 0; t < norm.modality().length; t++) {
        int copy = norm.modality()[t];
        double sumSquares = 0;
        for (int i = 0; i < hidden; i++) {
          float h = c.residual()[t * hidden + i] + norm.x()[t * hidden + i];
          assertThat(expected[t * hidden + i]).isEqualTo(h);
          sumSquares += (double) h * h;
        }
        double scale = 1 / Math.sqrt(sumSquares / hidden + norm.eps());
        for (int i = 0; i < hidden; i++) {
          double out = norm.weights()[copy * hidden + i] * (double) expected[t * hidden + i] * scale;
          assertThat((double) expected[n + t * hidden + i]).isCloseTo(out, within(1e-5 * Math.abs(out) + 1e-7));
        }
      }
    }
  }

  @Test
  void ropeTablesAreRotaryEmbeddingsAndTheReferenceRotatesEachPairByThem() {
    for (RopeCase c : cases(RopeCase.class)) {
      float[][] tables = c.tables();
      int half = c.headDim() / 2;
      for (int p = 0; p < c.maxPositions(); p++) {
        for (int j = 0; j < half; j++) {
          // RotaryEmbedding's formula: inv_freq_j = 1 / theta^(2j / headDim) in fp32, angle = p * inv_freq_j
          float invFreq = (float) (1.0 / (float) Math.pow(c.theta(), (float) (2 * j) / (float) c.headDim()));
          float angle = (float) p * invFreq;
          assertThat(tables[0][p * half + j]).isEqualTo((float) Math.cos(angle));
          assertThat(tables[1][p * half + j]).isEqualTo((float) Math.sin(angle));
        }
      }
      float[] expected = c.expected().values();
      int width = c.numHeads() * c.headDim();
      for (int t = 0; t < c.positions().length; t++) {
        for (int h = 0; h < c.numHeads(); h++) {
          for (int j = 0; j < half; j++) {
            int i = t * width + h * c.headDim() + j;
            float cos = tables[0][c.positions()[t] * half + j];
            float sin = tables[1][c.positions()[t] * half + j];
            float x1 = c.x()[i];
            float x2 = c.x()[i + half];
            assertThat(expected[i]).isEqualTo(x1 * cos - x2 * sin);
            assertThat(expected[i + half]).isEqualTo(x2 * cos + x1 * sin);
          }
        }
      }
    }
  }

  @Test
  void siluMulAndResidualReferencesAreTheirFormulas() {
    for (SiluMulCase c : cases(SiluMulCase.class)) {
      float[] expected = c.expected().values();
      for (int i = 0; i < expected.length; i++) {
        double g = c.gate()[i];
        double out = g / (1 + Math.exp(-g)) * c.up()[i];
        assertThat((double) expected[i]).isCloseTo(out, within(1e-6 * Math.abs(out) + 1e-12));
      }
    }
    for (ResidualAddCase c : cases(ResidualAddCase.class)) {
      float[] expected = c.expected().values();
      for (int i = 0; i < expected.length; i++) {
        assertThat(expected[i]).isEqualTo(c.y()[i] + c.x()[i]);
      }
    }
  }

  @Test
  void matmulReferenceIsTheProductOfTheUploadedWeightBitsAndItsScaleIsTheSumOfAbsoluteProducts() {
    for (MatmulCase c : cases(MatmulCase.class)) {
      Weights w = c.weights();
      Expected expected = c.expected();
      for (int t = 0; t < c.numTokens(); t++) {
        for (int r = 0; r < w.rows(); r++) {
          double sum = 0;
          double abs = 0;
          for (int col = 0; col < w.cols(); col++) {
            double product = (double) element(w, r, col) * c.x()[t * w.cols() + col];
            sum += product;
            abs += Math.abs(product);
          }
          int i = t * w.rows() + r;
          assertThat((double) expected.scale()[i]).isCloseTo(abs, within(1e-5 * abs));
          assertThat((double) expected.values()[i]).as("%s row %d token %d", c.sizes(), r, t)
              .isCloseTo(sum, within(w.cols() * 0x1p-24 * abs));
        }
      }
    }
  }

  @Test
  void kvAppendReferencePutsEachRowAtTheSlotItsBlockTableGives() {
    for (KvAppendCase c : cases(KvAppendCase.class)) {
      PagedLayout layout = c.layout();
      int[] tables = layout.flatTables();
      int elements = layout.poolElements();
      float[] pools = new float[2 * elements];
      for (int t = 0; t < c.rowSeq().length; t++) {
        int base = slotBase(layout, tables, c.rowSeq()[t], c.rowPos()[t]);
        for (int e = 0; e < layout.kvWidth(); e++) {
          pools[base + e] = Float.float16ToFloat(Float.floatToFloat16(c.key()[t * layout.kvWidth() + e]));
          pools[elements + base + e] = Float.float16ToFloat(Float.floatToFloat16(c.value()[t * layout.kvWidth() + e]));
        }
      }
      assertThat(c.expected().values()).containsExactly(pools);
    }
  }

  @Test
  void attentionReferenceIsCausalGroupedQueryAttentionOverTheDevicePoolThroughTheBlockTables() {
    for (AttentionCase c : cases(AttentionCase.class)) {
      PagedLayout layout = c.layout();
      short[][] pools = c.devicePools();
      int[] tables = layout.flatTables();
      int headDim = layout.headDim();
      int group = c.numHeads() / layout.numKvHeads();
      double scale = 1 / Math.sqrt(headDim);
      float[] expected = c.expected().values();
      for (int t = 0; t < c.rowSeq().length; t++) {
        for (int h = 0; h < c.numHeads(); h++) {
          int kvHead = h / group;
          int pos = c.rowPos()[t];
          double[] scores = new double[pos + 1];
          double max = Double.NEGATIVE_INFINITY;
          for (int j = 0; j <= pos; j++) { // causal: the row sees positions 0..its own
            int k = slotBase(layout, tables, c.rowSeq()[t], j) + kvHead * headDim;
            double dot = 0;
            for (int d = 0; d < headDim; d++) {
              dot += c.q()[(t * c.numHeads() + h) * headDim + d] * (double) Float.float16ToFloat(pools[0][k + d]);
            }
            scores[j] = scale * dot;
            max = Math.max(max, scores[j]);
          }
          double sum = 0;
          for (int j = 0; j <= pos; j++) {
            scores[j] = Math.exp(scores[j] - max);
            sum += scores[j];
          }
          for (int d = 0; d < headDim; d++) {
            double out = 0;
            for (int j = 0; j <= pos; j++) {
              int v = slotBase(layout, tables, c.rowSeq()[t], j) + kvHead * headDim;
              out += scores[j] / sum * Float.float16ToFloat(pools[1][v + d]);
            }
            assertThat((double) expected[(t * c.numHeads() + h) * headDim + d]).as("%s row %d head %d", c.sizes(), t, h)
                .isCloseTo(out, within(1e-5));
          }
        }
      }
    }
  }

  @Test
  void layerNormReferenceIsTheTwoPassNormWithWeightAndBias() {
    for (LayerNormCase c : cases(LayerNormCase.class)) {
      int hidden = c.hidden();
      float[] expected = c.expected().values();
      for (int t = 0; t < c.numRows(); t++) {
        double mean = 0;
        for (int i = 0; i < hidden; i++) {
          mean += c.x()[t * hidden + i];
        }
        mean /= hidden;
        double variance = 0;
        for (int i = 0; i < hidden; i++) {
          variance += Math.pow(c.x()[t * hidden + i] - mean, 2);
        }
        double scale = 1 / Math.sqrt(variance / hidden + c.eps());
        for (int i = 0; i < hidden; i++) {
          double out = (c.x()[t * hidden + i] - mean) * scale * c.weight()[i] + c.bias()[i];
          assertThat((double) expected[t * hidden + i]).as("%s row %d", c.sizes(), t)
              .isCloseTo(out, within(2e-4 * (Math.abs(out) + 1)));
        }
      }
    }
  }

  @Test
  void addTableAndQuickGeluReferencesAreTheirFormulas() {
    for (AddTableCase c : cases(AddTableCase.class)) {
      float[] expected = c.expected().values();
      for (int i = 0; i < expected.length; i++) {
        assertThat(expected[i]).isEqualTo(c.x()[i] + c.table()[i % c.table().length]);
      }
    }
    for (QuickGeluCase c : cases(QuickGeluCase.class)) {
      float[] expected = c.expected().values();
      for (int i = 0; i < expected.length; i++) {
        double x = c.x()[i];
        double out = x / (1 + Math.exp(-1.702 * x));
        assertThat((double) expected[i]).isCloseTo(out, within(1e-6 * Math.abs(out) + 1e-12));
      }
    }
  }

  @Test
  void fullAttentionReferenceIsEachImagesQueriesOverAllItsKeysReadThroughTheStridesRoundedOnTensorCores() {
    for (FullAttentionCase c : cases(FullAttentionCase.class)) {
      int headDim = c.headDim();
      int width = c.numHeads() * headDim;
      double scale = 1 / Math.sqrt(headDim);
      float[] expected = c.expected().values();
      for (int img = 0; img < c.numImages(); img++) {
        for (int i = 0; i < c.numQueries(); i++) {
          for (int h = 0; h < c.numHeads(); h++) {
            double[] scores = new double[c.numKeys()];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < c.numKeys(); j++) {
              double dot = 0;
              for (int d = 0; d < headDim; d++) {
                int qi = c.q().offset() + img * c.q().imageStride() + i * c.q().rowStride() + h * c.q().headStride() + d;
                int ki = c.k().offset() + img * c.k().imageStride() + j * c.k().rowStride() + h * c.k().headStride() + d;
                dot += (double) in(c, c.q().data()[qi]) * in(c, c.k().data()[ki]);
              }
              scores[j] = scale * dot;
              max = Math.max(max, scores[j]);
            }
            double sum = 0;
            for (int j = 0; j < c.numKeys(); j++) {
              scores[j] = Math.exp(scores[j] - max);
              sum += scores[j];
            }
            for (int d = 0; d < headDim; d++) {
              double out = 0;
              for (int j = 0; j < c.numKeys(); j++) {
                int vi = c.v().offset() + img * c.v().imageStride() + j * c.v().rowStride() + h * c.v().headStride() + d;
                out += scores[j] / sum * in(c, c.v().data()[vi]);
              }
              assertThat((double) expected[(img * c.numQueries() + i) * width + h * headDim + d])
                  .as("%s image %d row %d head %d", c.sizes(), img, i, h).isCloseTo(out, within(1e-5));
            }
          }
        }
      }
    }
  }

  /** An attention input as the kernel reads it: rounded to F16 on tensor cores. */
  private static double in(FullAttentionCase c, float value) {
    return c.tensorCores() ? Float.float16ToFloat(Float.floatToFloat16(value)) : value;
  }

  /** Element index of (pos, kv head 0, d 0) as attention.cu computes it from the flat tables. */
  private static int slotBase(PagedLayout layout, int[] tables, int seq, int pos) {
    int block = tables[seq * layout.maxBlocksPerSeq() + pos / layout.blockSize()];
    assertThat(block).as("block of position %d of sequence %d", pos, seq).isNotNegative();
    return (block * layout.blockSize() + pos % layout.blockSize()) * layout.kvWidth();
  }

  /** Element (r, c) of the weights from the bits the device gets. */
  private static float element(Weights w, int r, int c) {
    int i = r * w.cols() + c;
    return switch (w.dtype()) {
      case F32 -> w.floats()[i];
      case F16 -> Float.float16ToFloat(w.halves()[i]);
      case BF16 -> Float.intBitsToFloat((w.halves()[i] & 0xffff) << 16);
      default -> throw new AssertionError(w.dtype());
    };
  }

  private static <T extends KernelCase> List<T> cases(Class<T> type) {
    List<T> found = CASES.stream().filter(type::isInstance).map(type::cast).toList();
    assertThat(found).as("cases of " + type.getSimpleName()).isNotEmpty();
    return found;
  }

}
