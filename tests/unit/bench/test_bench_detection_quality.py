"""The detection-quality benchmark's report: the demo rows name their seeds and each sales
seed's precision (one seed's precision moves by several points with one alert), and the
series on seeds no setting was tuned on get a row of their own."""

from __future__ import annotations

import argparse

import pytest

from benchmarks.detection_quality import SALES_SEEDS, SERIES_SEEDS, markdown, seed_range


def test_demo_rows_name_the_seeds_and_each_sales_seeds_precision() -> None:
    demo = {"series": {"precision": 0.972, "alerts": 36, "recall": {"dip": 0.5, "spike": 0.1}},
            "sales": {"precision": 0.937, "alerts": 111, "recall": {"x10": 1.0},
                      "precision_per_seed": [0.946, 0.897, 0.971]}}
    md = markdown({"demo": demo})
    assert f"| series (seeds 0-{SERIES_SEEDS[-1]}) | 0.972 (36 alerts) | dip 0.5, spike 0.1 |" in md
    assert (f"| sales (seeds 0-{SALES_SEEDS[-1]}) | 0.937 (111 alerts; per seed 0.946, 0.897, "
            "0.971) | x10 1.0 |") in md
    # results saved before per-seed precision was kept still render
    del demo["sales"]["precision_per_seed"]
    assert "| 0.937 (111 alerts) | x10 1.0 |" in markdown({"demo": demo})


def test_the_demo_ablation_is_a_table_of_its_own() -> None:
    q = {"precision": 1.0, "alerts": 3, "recall": {"spike": 0.5}}
    demo = {"series": q, "sales": q,
            "ablation": {"without x": {"series": {**q, "precision": 0.5},
                                       "sales": {**q, "recall": {"x10": 0.25}}}}}
    md = markdown({"demo": demo})
    assert "| demo data, ablation | series precision |" in md
    assert "| without x | 0.5 (3) | spike 0.5 | 1.0 (3) | x10 0.25 |" in md


def test_the_unseen_seeds_get_a_row_under_the_tuned_ones() -> None:
    q = {"precision": 1.0, "alerts": 3, "recall": {"spike": 0.5}}
    unseen = {"precision": 0.9, "alerts": 10, "recall": {"spike": 0.65}, "seeds": [10, 29]}
    md = markdown({"demo": {"series": q, "sales": q}, "unseen": unseen})
    rows = md.splitlines()
    at = rows.index("| series (unseen seeds 10-29, not tuned on) | 0.9 (10 alerts) | spike 0.65 |")
    assert rows[at - 1].startswith("| sales (seeds 0-")
    assert "unseen" not in markdown({"demo": {"series": q, "sales": q}})


def test_seed_ranges_are_inclusive_and_refuse_empty_ones() -> None:
    assert seed_range("10-29") == range(10, 30)
    assert seed_range("12") == range(12, 13)
    with pytest.raises(argparse.ArgumentTypeError):
        seed_range("29-10")
