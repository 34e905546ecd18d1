"""Reports from result files only: statistics, tables, figures, side-by-side descriptions and HTML pages.

- :mod:`~hadpo.report.stats` — POPE per-question outcomes, bootstrap intervals, McNemar's exact test, SHR bootstrap;
- :mod:`~hadpo.report.tables` — POPE / SHR comparison tables, their display formats (counts as integers, rates
  in %, no index column) and the published LLaVA-1.5-7B numbers;
- :mod:`~hadpo.report.plots` — training curves, POPE and SHR bars, ``save_figure``;
- :mod:`~hadpo.report.qualitative` — each image (an embedded thumbnail) with the base and HA-DPO descriptions,
  judged sentences highlighted;
- :mod:`~hadpo.report.html` — displayable HTML fragments, embedded thumbnails and ``write_index(reports_root)``;
- :mod:`~hadpo.report.training` — a training run's curves (notebook 02), the DPO loss separated from the SFT term;
- :mod:`~hadpo.report.stage` — stage 05: the one-call functions of the dashboard notebook (``DashboardConfig`` in
  :mod:`~hadpo.report.config`).
"""
