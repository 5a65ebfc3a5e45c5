package dev.owlery.engine.cuda.forward;

import dev.owlery.engine.config.AbstractorConfig;
import dev.owlery.engine.config.VisionConfig;
import dev.owlery.engine.cuda.runtime.Device;
import dev.owlery.engine.cuda.runtime.DevicePointer;

/**
 * The vision tower's buffers in device memory, allocated once for {@code maxImages} images and named
 * as the CPU layers' {@code Buffers}: float32 rows, images one after another.
 */
final class DeviceVisionActivations {

  // ViT, numTokens = 1 + numPatches rows per image
  final DevicePointer patches; // [maxImages * numPatches, numChannels * patchSize^2]
  final DevicePointer embeddings; // [maxImages * numTokens, hiddenSize]
  final DevicePointer hidden; // [maxImages * numTokens, hiddenSize]: the residual stream
  final DevicePointer normed; // [maxImages * numTokens, hiddenSize]
  final DevicePointer qkv; // [maxImages * numTokens, 3 * hiddenSize]
  final DevicePointer context; // [maxImages * numTokens, hiddenSize]
  final DevicePointer projected; // [maxImages * numTokens, hiddenSize]
  final DevicePointer intermediate; // [maxImages * numTokens, intermediateSize]
  final DevicePointer imageFeatures; // [maxImages * numTokens, hiddenSize]: last_hidden_state

  // abstractor, numKeys = numQueries + numTokens rows per image
  final DevicePointer queries; // [maxImages * numQueries, d]
  final DevicePointer keyValues; // [maxImages * numKeys, d]: [norm1(Q); normk(X)] per image
  final DevicePointer positioned; // [maxImages * numKeys, d]: keyValues + [P_q; P_k]
  final DevicePointer q; // [maxImages * numQueries, d]
  final DevicePointer k; // [maxImages * numKeys, d]
  final DevicePointer v; // [maxImages * numKeys, d]
  final DevicePointer crossContext; // [maxImages * numQueries, d]
  final DevicePointer crossProjected; // [maxImages * numQueries, d]
  final DevicePointer crossNormed; // [maxImages * numQueries, d]
  final DevicePointer gate; // [maxImages * numQueries, abstractor intermediateSize]
  final DevicePointer up; // [maxImages * numQueries, abstractor intermediateSize]
  final DevicePointer visualEmbeds; // [maxImages * numQueries, outputHiddenSize]: visual_fc's rows

  DeviceVisionActivations(Device device, VisionConfig vision, AbstractorConfig abstractor, int outputHiddenSize,
      int maxImages) {
    int tokens = maxImages * vision.numTokens();
    int h = vision.hiddenSize();
    patches = words(device, maxImages * vision.numPatches(),
        vision.numChannels() * vision.patchSize() * vision.patchSize());
    embeddings = words(device, tokens, h);
    hidden = words(device, tokens, h);
    normed = words(device, tokens, h);
    qkv = words(device, tokens, 3 * h);
    context = words(device, tokens, h);
    projected = words(device, tokens, h);
    intermediate = words(device, tokens, vision.intermediateSize());
    imageFeatures = words(device, tokens, h);
    int d = abstractor.hiddenSize();
    int queryRows = maxImages * abstractor.numQueries();
    int keyRows = maxImages * (abstractor.numQueries() + vision.numTokens());
    queries = words(device, queryRows, d);
    keyValues = words(device, keyRows, d);
    positioned = words(device, keyRows, d);
    q = words(device, queryRows, d);
    k = words(device, keyRows, d);
    v = words(device, keyRows, d);
    crossContext = words(device, queryRows, d);
    crossProjected = words(device, queryRows, d);
    crossNormed = words(device, queryRows, d);
    gate = words(device, queryRows, abstractor.intermediateSize());
    up = words(device, queryRows, abstractor.intermediateSize());
    visualEmbeds = words(device, queryRows, outputHiddenSize);
  }

  private static DevicePointer words(Device device, int rows, int width) {
    return device.allocate(Math.multiplyExact(4L * rows, width));
  }
}
