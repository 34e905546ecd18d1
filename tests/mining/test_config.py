"""DataConfig: defaults, flat keys, and checks naming the field."""

from __future__ import annotations

import pytest

from hadpo.errors import ParamsError
from hadpo.mining.config import DataConfig


def test_defaults_are_valid_and_every_field_is_documented():
    cfg = DataConfig()
    assert cfg.source == "released" and cfg.rewrites == 3 and cfg.exclude_leaks and cfg.name == "llava-v1.5"
    assert all(DataConfig.help().values())
    assert DataConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("changes", "message"), [
    ({"source": "both"}, "source"),
    ({"n_images": 0}, "n_images"),
    ({"min_objects": 5, "max_objects": 2}, "max_objects"),
    ({"max_regions": 1, "min_regions": 2}, "max_regions"),
    ({"rewrites": 0}, "rewrites"),
    ({"name": "a/b"}, "name"),
    ({"judge": "gpt"}, "judge"),
    ({"base_url": "api.openai.com"}, "base_url"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"qa_yes_example": " "}, "qa_yes_example"),
    ({"typo_key": 1}, "unknown parameter"),
])
def test_bad_values_name_the_field(changes, message):
    with pytest.raises(ParamsError, match=message):
        DataConfig.from_dict(changes)
