// "Where the bug came from": a short history of the accumulation bug and its
// fixes, with links, as a collapsible note under the lab's charts. Static
// text only; it does not compute or draw anything.
import { el } from "../ui.js";

const LINKS = {
  unsloth: "https://unsloth.ai/blog/gradient",
  hf: "https://huggingface.co/blog/gradient_accumulation",
  pr: "https://github.com/huggingface/transformers/pull/34191",
  ranksIssue: "https://github.com/huggingface/transformers/issues/34242",
  ranksPr: "https://github.com/huggingface/transformers/pull/34373",
};

const link = (href, text) => el("a", { href, text, rel: "noopener" });

export function history() {
  const p = (...parts) => el("p", {}, ...parts);
  return el(
    "details",
    { class: "gl-history", "data-testid": "history" },
    el("summary", { text: "Where the bug came from" }),
    p(
      "Trainers that accumulate gradients usually asked the model for its loss one micro-batch at a time. That loss is already a mean over the micro-batch's own real tokens; ",
      "the trainer then divided it by the number of accumulation steps and added the gradients up. The result is a mean of means — right only when every micro-batch holds the same number of real tokens, which padded, variable-length data almost never does.",
    ),
    p(
      "In October 2024 Unsloth showed that losses logged with more accumulation steps did not match the full batch and traced it to this normalisation (",
      link(LINKS.unsloth, "“Bug Fixes in LLM Training - Gradient Accumulation”"),
      "). Hugging Face's fix, described in ",
      link(LINKS.hf, "“Fixing Gradient Accumulation”"),
      " and merged in ",
      link(LINKS.pr, "transformers PR #34191"),
      ", counts the real target tokens of the whole accumulated batch first and passes that count to the loss as ",
      el("code", { text: "num_items_in_batch" }),
      ", so every token's loss is divided by the same number: the corrected run here.",
    ),
    p(
      "The same error came back in two other shapes. With data parallelism each device had divided by its own token count before the gradients were averaged across devices — the ",
      el("i", { text: "local" }),
      " run here with more than one rank (",
      link(LINKS.ranksIssue, "issue #34242"),
      "; the fix gathers the count over devices, ",
      link(LINKS.ranksPr, "PR #34373"),
      "). And any custom loss function that averages over its own batch has to accept the global count too, or it reintroduces the bug however carefully the trainer counts.",
    ),
    p(
      "Which way naive's logged loss moves depends on the data. Naive gives the tokens of short documents more weight; if short documents are easier per token than long ones it logs a lower loss than the full batch, if they are harder a higher one. ",
      "With our King James text either can happen, depending on the corpus, the context and the mask — the README reports what was measured. The true loss Σℓ/N and the distance to the full-batch weights mean the same thing whatever the data.",
    ),
  );
}
