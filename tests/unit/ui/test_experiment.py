"""The A/B page's words come from the always-valid test; the fixed-horizon one is only quoted, labelled."""

from __future__ import annotations

from typing import Any

import pytest

from ui.experiment import (
    bandit_line,
    correction,
    cuped_line,
    default_experiment,
    fixed_horizon_note,
    promote_hint,
    render_summary,
    sample_ratio_alarm,
    serves,
    verdict,
)


def _summary(decision: str, low: float | None, high: float | None, fixed_p: float = 0.001,
             mismatch: bool = False, arms: int = 2) -> dict[str, Any]:
    group = {"exposed_customers": 100, "converted_customers": 12, "conversion_rate": 0.12,
             "revenue_per_exposed": 3.5}
    names = ["control", "treatment", "challenger"][:arms]
    comparison = {"conversion": {
        "difference": 0.031,
        "always_valid": {"decision": decision, "ci_low": low, "ci_high": high, "p_value": 0.2, "min_effect": 0.01},
        "fixed_horizon": {"p_value": fixed_p, "ci_low": 0.012, "ci_high": 0.05}},
        "cuped": {"conversion": {"always_valid": {"ci_low": 0.002, "ci_high": 0.041}}, "pre_period_days": 28.0,
                  "conversion_variance_reduction": 0.31}}
    return {
        "experiment": "x", "managed": True, "causal": True, "attribution_days": 7.0, "promoted": None, "bandit": None,
        "alpha": 0.05, "comparison_alpha": 0.05 / (arms - 1),
        "arms": [{"name": "control", "serves": "best_sellers", "percent": 50},
                 {"name": "treatment", "serves": "model:current", "percent": 25},
                 {"name": "challenger", "serves": "model:v2", "percent": 25}][:arms],
        "groups": dict.fromkeys(names, group), "comparisons": dict.fromkeys(names[1:], comparison),
        "sample_ratio": {"mismatch": mismatch, "observed_shares": {"control": 0.45, "treatment": 0.55},
                         "expected_shares": {"control": 0.5, "treatment": 0.5}, "p_value": 1.2e-5},
    }


@pytest.mark.parametrize(("decision", "low", "high", "starts"), [
    ("keep_running", -0.01, 0.07, "treatment against control: keep running, the always-valid 95% interval "
                                  "[-1.0, +7.0] points still includes 0"),
    ("treatment_better", 0.004, 0.06, "Stop: treatment converts better than control, by +3.1 points"),
    ("treatment_worse", -0.06, -0.004, "Stop: treatment converts worse than control"),
    ("no_practical_difference", -0.004, 0.006, "Stop: no practical difference between treatment and control. The "
                                               "always-valid 95% interval [-0.4, +0.6] points lies within +/- 1 "
                                               "points"),
    ("keep_running", None, None, "treatment against control: keep running, the always-valid 95% interval not "
                                 "bounded yet"),
])
def test_verdict_follows_the_always_valid_decision(decision: str, low: float | None, high: float | None,
                                                    starts: str) -> None:
    # the fixed-horizon p = 0.001 would call a winner; the verdict does not listen to it
    assert verdict(_summary(decision, low, high), "treatment").startswith(starts)


def test_with_three_arms_each_verdict_states_the_corrected_confidence() -> None:
    summary = _summary("treatment_better", 0.004, 0.06, arms=3)
    assert "always-valid 97.5% interval" in verdict(summary, "challenger")
    assert correction(summary).startswith("Each arm is compared with the control, control: 2 comparisons, each at "
                                          "alpha = 0.025 instead of 0.05 (Bonferroni)")
    assert correction(_summary("keep_running", None, None)).endswith("one comparison, no correction needed.")


def test_the_promote_hint_names_the_better_pinned_arm_until_it_is_promoted() -> None:
    summary = _summary("treatment_better", 0.004, 0.06, arms=3)
    assert promote_hint(summary) == ("Promote: challenger converts better than the control. `recsys ab promote x "
                                     "challenger` makes v2 the current model.")
    assert promote_hint(summary | {"promoted": {"arm": "challenger"}}) is None
    assert promote_hint(_summary("keep_running", -0.01, 0.07, arms=3)) is None
    assert promote_hint(_summary("treatment_better", 0.004, 0.06)) is None  # model:current is current already


def test_no_verdict_without_both_groups() -> None:
    summary = _summary("keep_running", None, None)
    summary["groups"]["control"] = {"exposed_customers": 0}
    assert verdict(summary, "treatment").startswith("treatment: not enough data yet")


def test_the_fixed_test_is_labelled() -> None:
    note = fixed_horizon_note(_summary("keep_running", -0.01, 0.07), "treatment")
    assert "fixed-horizon z-test (valid only for one look" in note and "p = 0.001" in note
    assert "[+1.2, +5.0] points" in note


def test_sample_ratio_alarm() -> None:
    assert sample_ratio_alarm(_summary("keep_running", None, None)) is None
    alarm = sample_ratio_alarm(_summary("keep_running", None, None, mismatch=True))
    assert alarm is not None and alarm.startswith("Sample-ratio mismatch: exposed customers per arm control 45.0%, "
                                                  "treatment 55.0%, against control 50%, treatment 50%")


def test_the_page_opens_on_the_experiment_with_the_most_customers() -> None:
    # `make demo`: two requests by hand in the live experiment, the replay's visits in their own
    listed = [{"name": "rec-v1", "live": True, "exposed_customers": 2},
              {"name": "replay-2011-11-09", "live": False, "exposed_customers": 1666}]
    assert default_experiment({"live": "rec-v1", "experiments": listed}) == "replay-2011-11-09"
    listed[0]["exposed_customers"] = 1666
    assert default_experiment({"live": "rec-v1", "experiments": listed}) == "rec-v1"  # a tie goes to the live one
    assert default_experiment({"live": "rec-v1", "experiments": []}) == "rec-v1"


def test_the_cuped_interval_stands_beside_the_raw_one() -> None:
    line = cuped_line(_summary("keep_running", -0.01, 0.07), "treatment")
    assert line == ("With CUPED (each customer's spend in the 28 days before their first exposure): always-valid "
                    "interval [+0.2, +4.1] points against [-1.0, +7.0] points unadjusted; 31% less variance of the "
                    "difference, so about 31% fewer customers for the same precision.")


def test_the_terminal_reads_the_pages_sentences() -> None:
    summary = _summary("treatment_better", 0.004, 0.06, arms=3)
    text = render_summary(summary)
    lines = text.splitlines()
    assert lines[0] == "A/B experiment x: a conversion is a purchase of a shown product within 7 days."
    assert lines[1].split() == ["arm", "serves", "share", "exposed", "customers", "converted", "customers",
                                "conversion", "revenue", "per", "exposed", "customer"]
    assert lines[4].split()[:4] == ["challenger", "model", "v2", "25%"]
    for sentence in (verdict(summary, "challenger"), cuped_line(summary, "treatment"), correction(summary),
                     fixed_horizon_note(summary, "challenger"), promote_hint(summary)):
        assert sentence is not None and sentence in lines
    assert lines[-2].startswith("Sample ratio as configured (chi-square p = ")


def test_the_bandit_line_gives_the_split_and_the_weighted_conversion_with_its_caveat() -> None:
    summary = _summary("keep_running", None, None) | {"bandit": {
        "interval_minutes": 60.0, "min_share": 0.1, "ipw_conversion": {"control": 0.1, "treatment": 0.125},
        "history": [{"shares": {"control": 50, "treatment": 50}}, {"shares": {"control": 30, "treatment": 70}}]}}
    line = bandit_line(summary)
    assert line.startswith("Bandit (Thompson sampling, re-weighted every 60 minutes, at least 10% per arm): the split "
                           "is control 30%, treatment 70% now; conversion weighted by the inverse of each customer's "
                           "assignment chance: control 10.0%, treatment 12.5%.")
    assert "biases the plain per-arm figures" in line and line in render_summary(summary).splitlines()


def test_what_an_arm_serves_in_words() -> None:
    assert [serves(label) for label in ("best_sellers", "model:current", "model:v2")] == [
        "best-sellers", "the current model", "model v2"]
