"""Reports from result files only: statistics, tables, figures, side-by-side descriptions and HTML pages.

- :mod:`~hadpo.report.stats` — POPE per-question outcomes, bootstrap intervals, McNemar's exact test, SHR bootstrap;
- :mod:`~hadpo.report.tables` — POPE / SHR comparison tables and the published LLaVA-1.5-7B numbers;
- :mod:`~hadpo.report.plots` — training curves, POPE and SHR bars, ``save_figure``;
- :mod:`~hadpo.report.qualitative` — base vs HA-DPO descriptions with judged sentences highlighted;
- :mod:`~hadpo.report.html` — displayable HTML fragments and ``write_index(reports_root)``;
- :mod:`~hadpo.report.stage` — stage 05: the one-call functions of the dashboard notebook (``DashboardConfig`` in
  :mod:`~hadpo.report.config`).
"""
