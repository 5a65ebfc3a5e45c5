package dev.owlery.coordinator.http;

import java.util.List;

/**
 * A multi-turn conversation as the prompt of mPLUG-Owl2's template {@code conv_mplug_owl2} (spec §7,
 * {@code mplug_owl2/conversation.py}, style TWO_NO_SYS): each turn is {@code ROLE + ": " + text}
 * followed by {@code " "} after a user turn and {@code "</s>"} after an assistant turn, and the pending
 * assistant turn adds {@code "ASSISTANT:"}, e.g. {@code USER: <|image|>What is shown here? ASSISTANT: A
 * house.</s>USER: Where is the sun? ASSISTANT:}. Images stay where their placeholders are.
 */
public final class ChatConversation {

  private static final String USER_SEPARATOR = " ";
  private static final String ASSISTANT_SEPARATOR = "</s>";

  private ChatConversation() {}

  /**
   * The prompt for {@code turns}, which alternate user and assistant, starting and ending with a user turn.
   *
   * @throws OpenAiRequestException naming the first turn out of order
   */
  public static String prompt(List<ChatTurn> turns) {
    if (turns.isEmpty()) {
      throw new OpenAiRequestException("messages", "messages must hold at least one user message");
    }
    StringBuilder prompt = new StringBuilder();
    for (int i = 0; i < turns.size(); i++) {
      ChatTurn turn = turns.get(i);
      ChatTurn.Role expected = i % 2 == 0 ? ChatTurn.Role.USER : ChatTurn.Role.ASSISTANT;
      if (turn.role() != expected) {
        throw new OpenAiRequestException("messages[%d].role".formatted(i),
            "messages must alternate user and assistant, starting with user; messages[%d] is %s where %s was expected"
                .formatted(i, roleName(turn.role()), roleName(expected)));
      }
      prompt.append(switch (turn.role()) {
        case USER -> "USER: " + turn.text() + USER_SEPARATOR;
        case ASSISTANT -> "ASSISTANT: " + turn.text() + ASSISTANT_SEPARATOR;
      });
    }
    if (turns.getLast().role() != ChatTurn.Role.USER) {
      throw new OpenAiRequestException("messages[%d].role".formatted(turns.size() - 1),
          "the last message must be the user's (the model answers it); messages[%d] is assistant"
              .formatted(turns.size() - 1));
    }
    return prompt.append("ASSISTANT:").toString();
  }

  /** The role's name in the API ({@code user}, {@code assistant}). */
  static String roleName(ChatTurn.Role role) {
    return switch (role) {
      case USER -> "user";
      case ASSISTANT -> "assistant";
    };
  }
}
