"""WorldConfig checks."""

from __future__ import annotations

import pytest

from hadpo.errors import ParamsError
from hadpo.world.config import WorldConfig


def test_defaults_are_the_base_models_world() -> None:
    """`hadpo world` with no options writes the world notebook 00 trains its base model on: 48 px, 16-px cells,
    and the same scene and bias knobs (notebook 00 composes WorldConfig: every world key is declared once)."""
    from hadpo.world.config import BaseModelConfig

    cfg = WorldConfig()
    assert (cfg.image_size, cfg.cell) == (48, 16)
    assert BaseModelConfig().world == cfg
    assert set(WorldConfig.field_names()) <= set(BaseModelConfig.field_names())
    assert all(WorldConfig.help().values())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"num_pairs": 1}, "num_pairs"),
        ({"num_pairs": 7}, "num_pairs"),
        ({"radius_max": 8}, "radius_max"),
        ({"radius_min": 8, "radius_max": 7}, "radius_min"),
        ({"image_size": 50}, "image_size"),
        ({"p_hal": 1.5}, "p_hal"),
        ({"q_yes_adv": -0.1}, "q_yes_adv"),
        ({"train_images": 0}, "train_images"),
        ({"p_extra": 0.0}, "pope_images"),
        ({"p_partner": 0.0, "num_pairs": 2}, "pope_images"),
    ],
)
def test_bad_values_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ParamsError, match=field):
        WorldConfig.from_dict(changes)


def test_unknown_key_is_an_error() -> None:
    with pytest.raises(ParamsError, match="images"):
        WorldConfig.from_dict({"images": 10})


def test_three_object_scenes_without_partners_need_three_pairs() -> None:
    assert WorldConfig(p_partner=0.0, num_pairs=3).p_partner == 0.0
    assert WorldConfig(p_extra=0.0, pope_images=0).pope_images == 0
