"""What the A/B page says, in words, from `/ab/summary`: the verdict comes from the always-valid test (valid however
often the page is refreshed), never from the fixed-horizon one. Pure functions of the summary and the `Speaker`
(language and locale), unit-tested."""

from __future__ import annotations

from typing import Any

from common.i18n import N_
from ui.i18n import Speaker

ENGLISH = Speaker()
# High contrast on Streamlit's light and dark backgrounds alike (the default palette's light blue was barely
# visible on white).
GROUP_COLOURS = {"control": "#1f4e9c", "treatment": "#e8590c"}
NOT_CAUSAL = N_("Replayed history: the orders are historical, so they do not depend on what was shown. The uplift "
                "here is the difference between the two lists' hit rates on the customers' next real orders, not "
                "the effect of showing them. `recsys ab simulate` shows the machinery measuring a real (planted) "
                "effect.")


def points(value: float | None, sp: Speaker = ENGLISH) -> str:
    return sp.signed(value * 100, 1) if value is not None else "-"


def interval(low: float | None, high: float | None, sp: Speaker = ENGLISH, scale: float = 100.0,
             in_points: bool = True) -> str:
    _ = sp.gettext
    if low is None or high is None:
        return _("not bounded yet")
    bounds = _("[{low}, {high}]").format(low=sp.signed(low * scale, 1), high=sp.signed(high * scale, 1))
    return _("{interval} points").format(interval=bounds) if in_points else bounds


def p_value(value: float | None, sp: Speaker = ENGLISH) -> str:
    return "-" if value is None else sp.significant(value)


def verdict(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    """One line: what to do about the experiment, from the always-valid test on conversion."""
    _ = sp.gettext
    groups = summary["groups"]
    if not all(g["exposed_customers"] for g in groups.values()):
        return _("Not enough data yet: both groups need exposed customers.")
    conversion = summary["conversion"]
    test = conversion["always_valid"]
    words = {"confidence": sp.percent(1 - summary["alpha"], 0), "bounds": interval(test["ci_low"], test["ci_high"], sp),
             "difference": points(conversion["difference"], sp)}
    decision = test["decision"]
    if decision == "treatment_better":
        return _("Stop: treatment (the model) converts better, by {difference} points (always-valid {confidence} "
                 "interval {bounds}).").format(**words)
    if decision == "treatment_worse":
        return _("Stop: treatment (the model) converts worse, by {difference} points (always-valid {confidence} "
                 "interval {bounds}).").format(**words)
    if decision == "no_practical_difference":
        return _("Stop: no practical difference. The always-valid {confidence} interval {bounds} lies within "
                 "+/- {effect} points.").format(effect=sp.number(test["min_effect"] * 100, 0), **words)
    return _("Keep running: the always-valid {confidence} interval {bounds} still includes 0 (p = {p}).").format(
        p=p_value(test["p_value"], sp), **words)


def fixed_horizon_note(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    _ = sp.gettext
    fixed = summary["conversion"]["fixed_horizon"]
    return _("For reference, the fixed-horizon z-test (valid only for one look at a sample size fixed in advance, "
             "not for this page, which looks every few seconds): p = {p}, {confidence} interval {bounds}.").format(
        p=p_value(fixed["p_value"], sp), confidence=sp.percent(1 - summary["alpha"], 0),
        bounds=interval(fixed["ci_low"], fixed["ci_high"], sp))


def sample_ratio_alarm(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str | None:
    """The alarm text when exposed customers per group do not follow the configured split, else None."""
    srm = summary["sample_ratio"]
    if not srm["mismatch"]:
        return None
    return sp.gettext("Sample-ratio mismatch: {observed} of exposed customers are in treatment, against {expected} "
                      "configured (chi-square p = {p}). The assignment or the logging is broken; do not trust the "
                      "comparison until it is fixed.").format(
        observed=sp.percent(srm["observed_treatment_share"]), expected=sp.percent(srm["expected_treatment_share"], 0),
        p=p_value(srm["p_value"], sp))


def default_experiment(experiments: dict[str, Any]) -> str:
    """The experiment the page opens on: the one with the most exposed customers (a replay's start is in the
    history's time and a live one's in wall time, so the starts do not say which is newer), else the live one."""
    listed = experiments["experiments"]
    if not listed:
        return str(experiments["live"])
    return str(max(listed, key=lambda e: (e["exposed_customers"], e["live"]))["name"])
