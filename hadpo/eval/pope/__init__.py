"""POPE (polling-based object probing): build the question sets, answer them with a LLaVA model, score them.

- :mod:`~hadpo.eval.pope.build` — the random / popular / adversarial sets from COCO-style instances;
- :mod:`~hadpo.eval.pope.infer` — batched greedy answering, each image encoded once, resumable, torchrun-aware;
- :mod:`~hadpo.eval.pope.score` — POPE's parser (and a strict one), id-matched metrics;
- :mod:`~hadpo.eval.pope.stage` — stage 03: ``run(cfg)`` answers, scores and writes the tables;
- :mod:`~hadpo.eval.pope.config` — ``PopeBuildConfig`` and ``PopeConfig``;
- :mod:`~hadpo.eval.pope.cli` — ``hadpo pope-build``, ``hadpo pope-run``, ``hadpo pope-score``.
"""
