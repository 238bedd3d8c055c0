"""Distilling the 1.5B default (``embedded``) into the 135M ``embedded-small`` on the recipes' questions.

- :mod:`.prompts`: the text-only requests (speech transcripts, DICOM header lines), split as the recipes split.
- :mod:`.teacher`: the 1.5B answers them on llama.cpp; answers that contradict their evidence are dropped;
  each kept answer's teacher-forced top-k log-probabilities are stored for logit distillation.
- :mod:`.kd`: the losses (cross-entropy on the teacher's answer; soft-target cross-entropy on the teacher's
  top-k, mapped through the token strings both vocabularies share).
- :mod:`.train`: LoRA on the student; the adapter and a merged model the stack loads (``--llm DIR``).
- :mod:`.quality`: what the student keeps, on held-out requests, before and after, beside the teacher.

``docs/distillation.md`` has the commands and the measured result.
"""
