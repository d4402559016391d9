"""The configuration reference cannot drift from the configuration (``reference``): every key
of every model is described, nothing is described that is gone, docs/configuration.md is
what the models make, and the README points to it."""

from __future__ import annotations

from pathlib import Path

from mcastproxy.reference import MEANING, fields, markdown

ROOT = Path(__file__).resolve().parents[1]


def test_every_key_is_described_and_nothing_else() -> None:
    keys = fields()
    assert len(keys) >= 80
    assert sorted(set(keys) - set(MEANING)) == []  # a key added without its meaning
    assert sorted(set(MEANING) - set(keys)) == []  # a meaning left for a key that is gone


def test_the_shipped_reference_is_the_one_the_models_make() -> None:
    shipped = (ROOT / "docs" / "configuration.md").read_text()
    assert shipped == markdown(), "run: python -m mcastproxy.reference > docs/configuration.md"


def test_defaults_and_ranges_come_from_the_models() -> None:
    text = markdown()
    assert "| `max-robustness` | 4 | >= 1, <= 7 |" in text
    assert "| `interface` | required |" in text
    assert "| `fast-leave` | false |" in text
    assert "RFC 9776 §6.6.2" in text
    assert "docs/configuration.md" in (ROOT / "README.md").read_text()
