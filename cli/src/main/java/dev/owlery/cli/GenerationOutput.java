package dev.owlery.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.owlery.engine.sampling.TokenLogprobs;
import java.util.List;

/**
 * What {@code owlery generate --output json} prints, the same for in-process and server runs:
 * {@code prompt_token_ids}, {@code token_ids}, {@code text}, {@code finish_reason}, and with
 * {@code --logprobs N} a {@code logprobs} entry per generated token.
 *
 * @param finishReason {@code stop_token}, {@code max_new_tokens}, {@code max_positions} or {@code stop_string}
 * @param logprobs one per generated token, or empty when not asked for
 */
record GenerationOutput(int[] promptTokenIds, int[] tokenIds, String text, String finishReason, List<TokenLogprobs> logprobs) {

  private static final ObjectMapper JSON = new ObjectMapper();

  String toJson() {
    ObjectNode root = JSON.createObjectNode();
    ArrayNode prompt = root.putArray("prompt_token_ids");
    for (int id : promptTokenIds) {
      prompt.add(id);
    }
    ArrayNode tokens = root.putArray("token_ids");
    for (int id : tokenIds) {
      tokens.add(id);
    }
    root.put("text", text);
    root.put("finish_reason", finishReason);
    if (!logprobs.isEmpty()) {
      ArrayNode entries = root.putArray("logprobs");
      for (TokenLogprobs lp : logprobs) {
        ObjectNode entry = entries.addObject();
        entry.put("token_id", lp.tokenId());
        entry.put("logprob", lp.logprob());
        ArrayNode top = entry.putArray("top");
        int[] ids = lp.topTokenIds();
        float[] values = lp.topLogprobs();
        for (int i = 0; i < ids.length; i++) {
          top.addObject().put("token_id", ids[i]).put("logprob", values[i]);
        }
      }
    }
    return root.toString();
  }
}
