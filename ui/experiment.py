"""What the A/B page says, in words, from `/ab/summary`: the verdict comes from the always-valid test (valid however
often the page is refreshed), never from the fixed-horizon one. Pure functions, unit-tested."""

from __future__ import annotations

from typing import Any

# High contrast on Streamlit's light and dark backgrounds alike (the default palette's light blue was barely
# visible on white).
GROUP_COLOURS = {"control": "#1f4e9c", "treatment": "#e8590c"}
NOT_CAUSAL = ("Replayed history: the orders are historical, so they do not depend on what was shown. The uplift "
              "here is the difference between the two lists' hit rates on the customers' next real orders, not "
              "the effect of showing them. `recsys ab simulate` shows the machinery measuring a real (planted) "
              "effect.")


def points(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}"


def interval(low: float | None, high: float | None, scale: float = 100.0, unit: str = " points") -> str:
    if low is None or high is None:
        return "not bounded yet"
    return f"[{low * scale:+.1f}, {high * scale:+.1f}]{unit}"


def verdict(summary: dict[str, Any]) -> str:
    """One line: what to do about the experiment, from the always-valid test on conversion."""
    groups = summary["groups"]
    if not all(g["exposed_customers"] for g in groups.values()):
        return "Not enough data yet: both groups need exposed customers."
    conversion = summary["conversion"]
    test = conversion["always_valid"]
    confidence = f"{1 - summary['alpha']:.0%}"
    bounds = interval(test["ci_low"], test["ci_high"])
    decision = test["decision"]
    if decision == "treatment_better":
        return (f"Stop: treatment (the model) converts better, by {points(conversion['difference'])} points "
                f"(always-valid {confidence} interval {bounds}).")
    if decision == "treatment_worse":
        return (f"Stop: treatment (the model) converts worse, by {points(conversion['difference'])} points "
                f"(always-valid {confidence} interval {bounds}).")
    if decision == "no_practical_difference":
        return (f"Stop: no practical difference. The always-valid {confidence} interval {bounds} lies within "
                f"+/- {test['min_effect'] * 100:g} points.")
    return (f"Keep running: the always-valid {confidence} interval {bounds} still includes 0 "
            f"(p = {test['p_value']:.3g}).")


def fixed_horizon_note(summary: dict[str, Any]) -> str:
    fixed = summary["conversion"]["fixed_horizon"]
    p_value = "-" if fixed["p_value"] is None else f"{fixed['p_value']:.3g}"
    return (f"For reference, the fixed-horizon z-test (valid only for one look at a sample size fixed in advance, "
            f"not for this page, which looks every few seconds): p = {p_value}, "
            f"{1 - summary['alpha']:.0%} interval {interval(fixed['ci_low'], fixed['ci_high'])}.")


def sample_ratio_alarm(summary: dict[str, Any]) -> str | None:
    """The alarm text when exposed customers per group do not follow the configured split, else None."""
    srm = summary["sample_ratio"]
    if not srm["mismatch"]:
        return None
    return (f"Sample-ratio mismatch: {srm['observed_treatment_share']:.1%} of exposed customers are in treatment, "
            f"against {srm['expected_treatment_share']:.0%} configured (chi-square p = {srm['p_value']:.2g}). "
            "The assignment or the logging is broken; do not trust the comparison until it is fixed.")


def default_experiment(experiments: dict[str, Any]) -> str:
    """The experiment the page opens on: the one with the most exposed customers (a replay's start is in the
    history's time and a live one's in wall time, so the starts do not say which is newer), else the live one."""
    listed = experiments["experiments"]
    if not listed:
        return str(experiments["live"])
    return str(max(listed, key=lambda e: (e["exposed_customers"], e["live"]))["name"])
