package dev.owlery.cli;

import com.google.protobuf.ByteString;
import dev.owlery.client.FinishReasons;
import dev.owlery.client.GenerationStream;
import dev.owlery.client.OwleryClient;
import dev.owlery.loadtest.ClientTlsOption;
import dev.owlery.engine.sampling.TokenLogprobs;
import dev.owlery.proto.v1.GenerateDelta;
import dev.owlery.proto.v1.GenerateFinish;
import dev.owlery.proto.v1.GenerateRequest;
import dev.owlery.proto.v1.GenerateResponse;
import dev.owlery.proto.v1.Image;
import dev.owlery.proto.v1.PromptTemplate;
import dev.owlery.proto.v1.PromptTokenIds;
import dev.owlery.proto.v1.TopLogprob;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** {@code owlery generate --server}: the same request sent to a coordinator through the client SDK. */
final class RemoteGeneration {

  private final String target;
  private final Duration deadline;
  private final String apiKey;
  private final ClientTlsOption tls;

  /**
   * @param apiKey the key to send; null sends none
   * @param tls plaintext, or the CA to trust and the client certificate to present
   */
  RemoteGeneration(String target, Duration deadline, String apiKey, ClientTlsOption tls) {
    this.target = target;
    this.deadline = deadline;
    this.apiKey = apiKey;
    this.tls = tls;
  }

  /** Runs the request; streams text deltas to {@code textOut} when it is not null. */
  GenerationOutput run(GenerateCommand command, List<byte[]> images, Consumer<String> textOut) {
    GenerateRequest request = request(command, images);
    List<Integer> tokens = new ArrayList<>();
    List<TokenLogprobs> logprobs = new ArrayList<>();
    StringBuilder text = new StringBuilder();
    GenerateFinish finish = null;
    try (OwleryClient client = tls.applyTo(OwleryClient.builder()).targets(target).apiKey(apiKey)
            .defaultDeadline(deadline).build();
        GenerationStream stream = client.generateStream(request)) {
      while (stream.hasNext()) {
        GenerateResponse response = stream.next();
        switch (response.getEventCase()) {
          case DELTA -> {
            GenerateDelta delta = response.getDelta();
            tokens.addAll(delta.getTokenIdsList());
            text.append(delta.getText());
            delta.getLogprobsList().forEach(lp -> logprobs.add(fromProto(lp)));
            if (textOut != null) {
              textOut.accept(delta.getText());
            }
          }
          case FINISH -> finish = response.getFinish();
          case EVENT_NOT_SET -> throw new IllegalStateException("the server sent an empty Generate response");
        }
      }
    }
    if (finish == null) {
      throw new IllegalStateException("the server ended the stream without a finish message");
    }
    return new GenerationOutput(
        finish.getPromptTokenIdsList().stream().mapToInt(Integer::intValue).toArray(),
        tokens.stream().mapToInt(Integer::intValue).toArray(),
        text.toString().strip(),
        FinishReasons.apiName(finish.getFinishReason()),
        logprobs);
  }

  private static GenerateRequest request(GenerateCommand c, List<byte[]> images) {
    GenerateRequest.Builder b = promptRequest(c.prompt, c.template, c.aspectRatio, images);
    if (c.model != null) {
      b.setModel(c.model);
    }
    c.sampling.applyTo(b);
    if (c.logprobs > 0) {
      b.setLogprobs(true).setNumTopLogprobs(c.logprobs);
    }
    return b.build();
  }

  /** A request holding the prompt (text or ids), its template, the pictures and their aspect-ratio policy. */
  static GenerateRequest.Builder promptRequest(GenerateCommand.PromptSource prompt, String template, String aspectRatio,
      List<byte[]> images) {
    GenerateRequest.Builder b = GenerateRequest.newBuilder();
    PromptTemplate promptTemplate = switch (GenerateCommand.parseTemplate(template)) {
      case MPLUG_OWL2 -> PromptTemplate.PROMPT_TEMPLATE_MPLUG_OWL2;
      case NONE -> PromptTemplate.PROMPT_TEMPLATE_NONE;
    };
    if (prompt.text != null) {
      b.setPromptText(prompt.text).setTemplate(promptTemplate);
    } else {
      // Ids are used as given, as in process: the template (default mplug_owl2) is for text only,
      // and the server rejects one with ids.
      PromptTokenIds.Builder ids = PromptTokenIds.newBuilder();
      for (int id : prompt.ids) {
        ids.addTokenIds(id);
      }
      b.setPromptTokenIds(ids);
    }
    b.setAspectRatioPolicy(switch (GenerateCommand.parseAspectRatio(aspectRatio)) {
      case PAD -> dev.owlery.proto.v1.AspectRatioPolicy.ASPECT_RATIO_POLICY_PAD;
      case RESIZE -> dev.owlery.proto.v1.AspectRatioPolicy.ASPECT_RATIO_POLICY_RESIZE;
      case NONE -> dev.owlery.proto.v1.AspectRatioPolicy.ASPECT_RATIO_POLICY_NONE;
    });
    for (byte[] image : images) {
      b.addImages(Image.newBuilder().setData(ByteString.copyFrom(image)));
    }
    return b;
  }

  private static TokenLogprobs fromProto(dev.owlery.proto.v1.TokenLogprob lp) {
    List<TopLogprob> top = lp.getTopLogprobsList();
    int[] ids = new int[top.size()];
    float[] values = new float[top.size()];
    for (int i = 0; i < ids.length; i++) {
      ids[i] = top.get(i).getTokenId();
      values[i] = top.get(i).getLogprob();
    }
    return new TokenLogprobs(lp.getTokenId(), lp.getLogprob(), ids, values);
  }
}
