package dev.owlery.loadtest;

import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTokenIds;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * The sequence of requests a level sends, the same for every level and every run with the same
 * seed: request {@code i} depends only on the seed and {@code i} (and distinct synthetic pictures
 * on the pass too, see {@link SyntheticImages}). Each request gets a sampling seed drawn from the
 * workload seed, so sampled runs repeat too. Thread-safe.
 */
public abstract class Workload {

  /** LLaMA's beginning-of-sequence id, first in synthetic prompts. */
  static final int BOS_ID = 1;
  /** Ids below this are special (unk, bos, eos) and kept out of synthetic prompts. */
  static final int FIRST_ORDINARY_ID = 3;
  /** The image placeholder in prompt ids. */
  static final int IMAGE_PLACEHOLDER_ID = -200;

  private final long seed;

  private Workload(long seed) {
    this.seed = seed;
  }

  /** The pictures a synthetic request carries, one image placeholder each. */
  public interface Pictures {
    /** No picture. */
    Pictures NONE = (pass, index) -> List.of();

    /** The pictures of request {@code index} in pass {@code pass} (0 the warm-up, 1 the first level). */
    List<Image> of(int pass, long index);

    /** The same pictures with every request, e.g. files given with --image. */
    static Pictures same(List<Image> images) {
      List<Image> copy = List.copyOf(images);
      return (pass, index) -> copy;
    }
  }

  /**
   * The request at {@code index} of the sequence, in pass {@code pass}: 0 the warm-up, 1 the first
   * level, and so on.
   */
  public final GenerateRequest request(int pass, long index) {
    Random random = random(index);
    return build(pass, index, random).setSeed(random.nextLong() & Long.MAX_VALUE).build();
  }

  /** The request at {@code index} in pass {@code pass}, drawing what it chooses from {@code random}. */
  abstract GenerateRequest.Builder build(int pass, long index, Random random);

  /** A generator for request {@code index} alone (SplitMix64 of the seed and the index). */
  private Random random(long index) {
    long z = seed + (index + 1) * 0x9E3779B97F4A7C15L;
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return new Random(z ^ (z >>> 31));
  }

  /** Every request is {@code base}. */
  public static Workload fixed(GenerateRequest base, long seed) {
    return new Workload(seed) {
      @Override
      GenerateRequest.Builder build(int pass, long index, Random random) {
        return base.toBuilder();
      }
    };
  }

  /**
   * The entries of a dataset in an order shuffled by the seed, over again when the level needs more.
   *
   * @param prototype template, aspect ratio and sampling fields every request shares; its
   *     max_new_tokens applies to the entries that set none
   * @param maxTokens each entry's max_new_tokens
   */
  public static Workload dataset(List<DatasetEntry> entries, int[] maxTokens, GenerateRequest prototype, long seed) {
    List<Integer> order = new ArrayList<>();
    for (int i = 0; i < entries.size(); i++) {
      order.add(i);
    }
    Collections.shuffle(order, new Random(seed));
    return new Workload(seed) {
      @Override
      GenerateRequest.Builder build(int pass, long index, Random random) {
        int e = order.get((int) (index % order.size()));
        DatasetEntry entry = entries.get(e);
        GenerateRequest.Builder b = prototype.toBuilder().setMaxNewTokens(maxTokens[e]).addAllImages(entry.images());
        if (entry.prompt() != null) {
          return b.setPromptText(entry.prompt());
        }
        return b.clearTemplate().setPromptTokenIds(ids(entry.promptIds()));
      }
    };
  }

  /**
   * Prompts of BOS, one image placeholder per picture and random ordinary token ids, whose text
   * length (BOS included) and max_new_tokens are drawn from the two distributions.
   *
   * @param vocabSize the served model's vocabulary size
   * @param pictures what each request carries
   */
  public static Workload synthetic(LengthDistribution input, LengthDistribution output, int vocabSize,
      Pictures pictures, GenerateRequest prototype, long seed) {
    if (vocabSize <= FIRST_ORDINARY_ID) {
      throw new IllegalArgumentException("synthetic prompts need a vocabulary of more than %d ids; the server reports %d"
          .formatted(FIRST_ORDINARY_ID, vocabSize));
    }
    return new Workload(seed) {
      @Override
      GenerateRequest.Builder build(int pass, long index, Random random) {
        int length = input.sample(random);
        List<Image> images = pictures.of(pass, index);
        PromptTokenIds.Builder ids = PromptTokenIds.newBuilder().addTokenIds(BOS_ID);
        images.forEach(image -> ids.addTokenIds(IMAGE_PLACEHOLDER_ID));
        for (int i = 1; i < length; i++) {
          ids.addTokenIds(FIRST_ORDINARY_ID + random.nextInt(vocabSize - FIRST_ORDINARY_ID));
        }
        return prototype.toBuilder().clearTemplate().setPromptTokenIds(ids).addAllImages(images)
            .setMaxNewTokens(output.sample(random));
      }
    };
  }

  private static PromptTokenIds ids(int[] ids) {
    PromptTokenIds.Builder b = PromptTokenIds.newBuilder();
    for (int id : ids) {
      b.addTokenIds(id);
    }
    return b.build();
  }
}
