"""Report pages say what ran: a title naming the notebook and the run, and a table of the parameters that matter
under the parameters heading, even with the code hidden; summary tables without an index column."""

from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest

from hadpo.notebooks import (
    REPO_ROOT,
    kernel_environment,
    page_title,
    render_html,
    run_parameters_html,
    table,
)
from hadpo.progress import PROGRESS_ENV


def _executed(parameters: dict, *, exception: bool = False) -> nbformat.NotebookNode:
    """A notebook shaped like an executed copy of notebooks/03_pope.ipynb, with papermill's record."""
    v4 = nbformat.v4
    nb = v4.new_notebook()
    params = v4.new_code_cell("set = 'all'", metadata={"tags": ["parameters"]})
    injected = v4.new_code_cell("set = 'all'", metadata={"tags": ["injected-parameters"]})
    nb.cells = [v4.new_markdown_cell("# 03 · POPE"), params, injected,
                v4.new_code_cell("from hadpo.eval.pope import stage"), v4.new_markdown_cell("## 1. Parameters"),
                v4.new_code_cell("cfg = stage.Config.from_namespace(globals())"),
                v4.new_markdown_cell("## 2. Answer and score")]
    nb.metadata["papermill"] = {
        "parameters": parameters, "input_path": "/somewhere/notebooks/03_pope.ipynb",
        "start_time": "2026-01-02T03:04:05.678+00:00", "duration": 8.1, "exception": exception or None,
    }
    return nb


POPE = {"model": str(REPO_ROOT / "runs" / "demo" / "base" / "sft" / "model"), "adapter": None,
        "merge_adapter": True, "set": "all", "limit": None, "questions": None, "dtype": "float32",
        "data_root": "runs/demo/data", "max_new_tokens": 32, "rule": "pope", "progress": True}


def _page(tmp_path: Path, name: str, parameters: dict, **kw) -> str:
    source = tmp_path / f"{name}.ipynb"
    nbformat.write(_executed(parameters, **kw), str(source))
    return render_html(source, tmp_path / "demo" / f"{name}.html", hide_input=True, commit="0123456789abcdef-dirty"
                       ).read_text()


def test_the_page_is_titled_by_notebook_and_run_and_names_what_ran(tmp_path: Path) -> None:
    page = _page(tmp_path, "03_pope_base", POPE)
    assert "<title>03_pope_base — demo</title>" in page and page_title("03_pope_base", "demo") == "03_pope_base — demo"
    table_at, heading_at = page.index("hadpo-run-parameters"), page.index("1. Parameters")
    assert heading_at < table_at < page.index("2. Answer and score"), "under the parameters heading"
    shown = re.sub(r"<[^>]+>", "", page[table_at: page.index("</table>", table_at)])
    for expected in ("notebook 03_pope", "run demo", "commit 0123456789ab-dirty", "2026-01-02 03:04 UTC, 8.1 s",
                     "model runs/demo/base/sft/model", "adapter none (base model)", "set all", "limit all",
                     "max_new_tokens 32", "rule pope"):
        assert expected in shown, expected
    # unset parameters without a meaning of their own, and those that take no effect, are left out
    assert "questions" not in shown and "merge_adapter" not in shown and "progress" not in shown


def test_the_base_and_the_hadpo_pages_differ_in_the_adapter_they_name(tmp_path: Path) -> None:
    adapter = str(REPO_ROOT / "runs" / "demo" / "train" / "adapter")
    base = _page(tmp_path, "03_pope_base", POPE)
    hadpo = _page(tmp_path, "03_pope_hadpo", {**POPE, "adapter": adapter})
    assert "adapter <code>runs/demo/train/adapter</code>" in hadpo and "merge_adapter <code>yes</code>" in hadpo
    assert "none (base model)" in base and "runs/demo/train/adapter" not in base


def test_values_are_escaped_and_a_failed_run_says_so(tmp_path: Path) -> None:
    page = _page(tmp_path, "03_pope", {**POPE, "model": "org/<b>model</b>"}, exception=True)
    assert "org/&lt;b&gt;model&lt;/b&gt;" in page and "<b>model</b>" not in page
    assert "<b>failed</b>" in page


def test_parameters_shown_only_where_they_take_effect() -> None:
    shr = {"model": "m", "judge": "oracle", "judge_model": "gpt-4-0613", "base_url": "https://x/v1",
           "do_sample": False, "sample_temperature": 0.7, "num_beams": 5, "seed": 3}
    html = run_parameters_html(_executed(shr), run="r", commit=None)
    assert "judge <code>oracle</code>" in html and "gpt-4-0613" not in html and "sample_temperature" not in html
    assert "commit <code>unknown</code>" in html and "num_beams <code>5</code>" in html
    openai = run_parameters_html(_executed({**shr, "judge": "openai", "do_sample": True}), run="r", commit=None)
    assert "judge_model <code>gpt-4-0613</code>" in openai and "sample_temperature <code>0.7</code>" in openai


def test_the_kernel_environment_is_set_for_the_run_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    with kernel_environment():
        assert os.environ[PROGRESS_ENV] == "summary"
    assert PROGRESS_ENV not in os.environ
    monkeypatch.setenv(PROGRESS_ENV, "off")  # a choice the user made stands
    with kernel_environment():
        assert os.environ[PROGRESS_ENV] == "off"
    assert os.environ[PROGRESS_ENV] == "off"


def test_a_summary_table_has_no_index_column_and_formats_by_column() -> None:
    shown = table([{"Set": "random", "F1 (%)": 66.6667, "TP": 90, "Peak (GB)": None}], caption="model m",
                  formats={"F1 (%)": "{:.2f}", "Peak (GB)": "{:.2f}"})
    html = shown._repr_html_()
    assert "<caption>model m</caption>" in html and ">66.67<" in html and ">90<" in html and ">—<" in html
    assert len(re.findall(r"<th[ >]", html)) == 4, "one header per column, no index header"
    assert html == shown._repr_html_(), "the same table renders the same HTML"
    assert repr(shown).splitlines() == ["model m", "   Set F1 (%)  TP Peak (GB)", "random  66.67  90         —"]


def test_a_page_fetches_nothing_from_the_network(tmp_path: Path) -> None:
    """nbconvert's lab page loads require.js, MathJax and mermaid from a CDN; the kit's template drops them, so a
    report opens complete offline."""
    page = _page(tmp_path, "03_pope_base", POPE)
    assert not re.findall(r"""<script[^>]+src=["']https?:""", page)
    assert "cdnjs" not in page and "jp-Notebook" in page
