"""The one override syntax: papermill's -f / -p (values parsed as papermill parses them), and the old forms
answered with the new one."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from hadpo.config import Params, param
from hadpo.overrides import add_params_arguments, config_from_args, legacy_form, parse_value


@pytest.mark.parametrize("text", ["True", "False", "None", "null", "1", "-3", "1_000", "1e-4", "5.0e-05", "0.1",
                                  "nan", "inf", "adv", "llava-hf/llava-1.5-7b-hf", "", "true", "[1, 2]"])
def test_values_parse_exactly_as_papermill_parses_them(text: str) -> None:
    from papermill.cli import _resolve_type

    expected, got = _resolve_type(text), parse_value(text)
    assert type(got) is type(expected)
    assert got == expected or (got != got and expected != expected)  # nan


@dataclass
class Cmd(Params):
    model: str = param("m", "A model.")
    lr: float = param(1e-4, "A rate.")
    limit: int | None = param(None, "A limit.")
    flag: bool = param(False, "A flag.")


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_params_arguments(parser)
    return parser.parse_args(argv)


def test_files_then_yaml_then_p_then_raw(tmp_path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("lr: 0.5\nlimit: 3\n")
    b.write_text("limit: 4\n")
    args = _args(["-f", str(a), "-f", str(b), "-y", "flag: true", "-p", "lr", "1e-3", "-r", "model", "7"])
    cfg = config_from_args(Cmd, args)
    assert (cfg.lr, cfg.limit, cfg.flag, cfg.model) == (1e-3, 4, True, "7")
    # A number for a key that only takes text keeps its text (papermill would inject the int 7).
    assert config_from_args(Cmd, _args(["-p", "model", "7", "-p", "limit", "None"])).model == "7"


@pytest.mark.parametrize(("argv", "kwargs", "new"), [
    (["params/x.yaml", "--set", "lr", "1e-4"], {"positional_file": True}, ["-f", "params/x.yaml", "-p", "lr", "1e-4"]),
    (["--params", "x.yaml", "--set", "num_runs=3"], {}, ["-f", "x.yaml", "-p", "num_runs", "3"]),
    (["--data-root", "d", "--set", "adv"], {"keys": ["data_root", "set"]},
     ["-p", "data_root", "d", "-p", "set", "adv"]),
    (["--out", "o", "--images", "3"], {"flags": {"--out": "", "--images": "train_images"}},
     ["o", "-p", "train_images", "3"]),
])
def test_old_forms_translate_to_the_new_one(argv, kwargs, new) -> None:
    assert legacy_form(argv, **kwargs) == new


def test_new_forms_are_left_alone() -> None:
    assert legacy_form(["-f", "x.yaml", "-p", "set", "adv", "-p", "lr", "--params"], keys=["set"]) is None


def test_a_kit_error_is_one_line_and_its_traceback_goes_to_the_error_log(tmp_path, monkeypatch, capsys) -> None:
    from hadpo.cli import main

    log = tmp_path / "errors.log"
    monkeypatch.setenv("HADPO_ERROR_LOG", str(log))
    assert main(["train", "-p", "leaning_rate", "1e-4"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["hadpo train: error: parameters (-p): TrainConfig: unknown parameter(s) 'leaning_rate' "
                   "(did you mean 'learning_rate'?)"]
    assert "Traceback (most recent call last)" in log.read_text() and "hadpo train" in log.read_text()
    assert main(["--verbose", "train", "-p", "leaning_rate", "1e-4"]) == 1
    assert "Traceback (most recent call last)" in capsys.readouterr().err
