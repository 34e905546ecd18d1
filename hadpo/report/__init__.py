"""Reports from result files only: statistics, tables, figures, side-by-side descriptions and HTML pages.

- :mod:`~hadpo.report.stats` — POPE per-question outcomes, bootstrap intervals, McNemar's exact test, SHR bootstrap;
- :mod:`~hadpo.report.tables` — POPE / SHR comparison tables, their display formats (counts as integers, rates
  in %, no index column) and the published LLaVA-1.5-7B numbers;
- :mod:`~hadpo.report.plots` — training curves, POPE and SHR bars, ``save_figure``;
- :mod:`~hadpo.report.qualitative` — each image (an embedded thumbnail) with the base and HA-DPO descriptions,
  judged sentences highlighted;
- :mod:`~hadpo.report.html` — displayable HTML fragments, embedded thumbnails and ``write_index(reports_root)``;
- :mod:`~hadpo.report.training` — a training run's curves (notebook 02), the DPO loss and each weighted term
  (conditional, anchor, SFT) on its own panel;
- :mod:`~hadpo.report.rounds` — metrics by round of a pipeline run's ``rounds.json`` (round 0: the base model),
  each with the dashboard's own bootstrap interval; a table, ``rounds.png`` and ``summary.json``'s ``rounds``;
- :mod:`~hadpo.report.compare` — ``hadpo compare``: methods × seeds across runs, the paired Δ to a reference method
  at the same seed with its paired interval and test, as ``compare.json`` and ``compare.md``;
- :mod:`~hadpo.report.stage` — stage 05: the one-call functions of the dashboard notebook (``DashboardConfig`` in
  :mod:`~hadpo.report.config`).
"""
