"""AMBER (Wang et al., 2023): LLM-free hallucination measures on descriptions and yes/no questions.

- :mod:`hadpo.data.amber_files` — the release's files, read and checked;
- :mod:`~hadpo.eval.amber.words` — the object words of a description, without NLTK;
- :mod:`~hadpo.eval.amber.metrics` — CHAIR, Cover, Hal, Cog; accuracy / precision / recall / F1 with "no" as the
  positive class, over all questions, per dimension and per attribute kind; the AMBER score;
- :mod:`~hadpo.eval.amber.stage` — the stage (notebook 06, ``hadpo amber``, ``hadpo amber-score``).
"""
