"""MMHal-Bench (Sun et al., 2023): 96 questions whose answers an LLM judge rates 0–6 for informativeness and
hallucination.

- :mod:`hadpo.data.mmhal_files` — the question file, read and checked;
- :mod:`~hadpo.eval.mmhal.prompt` — the kit's judge prompt (a template file can replace it) and the rating parser;
- :mod:`~hadpo.eval.mmhal.judge` — asking the judge, with bounded re-asks, from the cache on a rerun;
- :mod:`~hadpo.eval.mmhal.metrics` — the score overall and per question type, the hallucination rate;
- :mod:`~hadpo.eval.mmhal.stage` — the stage (notebook 07, ``hadpo mmhal``, ``hadpo mmhal-judge``).
"""
