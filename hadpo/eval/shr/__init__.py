"""SHR (sentence-level hallucination ratio): describe images, judge every sentence, compute the metrics.

- :mod:`~hadpo.eval.shr.stage` — stage 04: ``run(cfg)`` describes, judges and scores;
- :mod:`~hadpo.eval.shr.config` — ``ShrConfig``;
- :mod:`~hadpo.eval.shr.inputs`, ``prompt``, ``sentences``, ``judge``, ``parse``, ``metrics`` — the protocol's parts;
- :mod:`~hadpo.eval.shr.cli` — ``hadpo shr`` and ``hadpo shr-judge``.
"""
