"""What an experiment's summary (`/ab/summary`) says, in words: the one renderer of the A/B page and of the
terminal (`recsys ab stop`, a replay's result). The verdict comes from the always-valid test (valid however often
it is looked at), never from the fixed-horizon one. Pure functions of the summary and the `Speaker` (language and
locale), unit-tested."""

from __future__ import annotations

from typing import Any

from common.i18n import N_
from ui.i18n import Speaker

ENGLISH = Speaker()
# High contrast on Streamlit's light and dark backgrounds alike (the default palette's light blue was barely
# visible on white).
ARM_PALETTE = ("#1f4e9c", "#e8590c", "#2b8a3e", "#862e9c", "#c92a2a", "#5c940d", "#0b7285", "#a61e4d")
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


def verdict(summary: dict[str, Any], arm: str, sp: Speaker = ENGLISH) -> str:
    """One line: what the always-valid test on conversion says about one arm against the control."""
    _ = sp.gettext
    control = summary["arms"][0]["name"]
    groups = summary["groups"]
    if not (groups[control]["exposed_customers"] and groups[arm]["exposed_customers"]):
        return _("{arm}: not enough data yet; it and {control} both need exposed customers.").format(
            arm=sp.label(arm), control=sp.label(control))
    conversion = summary["comparisons"][arm]["conversion"]
    test = conversion["always_valid"]
    words = {"arm": sp.label(arm), "control": sp.label(control), "confidence": confidence(summary, sp),
             "bounds": interval(test["ci_low"], test["ci_high"], sp),
             "difference": points(conversion["difference"], sp)}
    decision = test["decision"]
    if decision == "treatment_better":
        return _("Stop: {arm} converts better than {control}, by {difference} points (always-valid {confidence} "
                 "interval {bounds}).").format(**words)
    if decision == "treatment_worse":
        return _("Stop: {arm} converts worse than {control}, by {difference} points (always-valid {confidence} "
                 "interval {bounds}).").format(**words)
    if decision == "no_practical_difference":
        return _("Stop: no practical difference between {arm} and {control}. The always-valid {confidence} "
                 "interval {bounds} lies within +/- {effect} points.").format(
            effect=sp.number(test["min_effect"] * 100, 0), **words)
    return _("{arm} against {control}: keep running, the always-valid {confidence} interval {bounds} still "
             "includes 0 (p = {p}).").format(p=p_value(test["p_value"], sp), **words)


def confidence(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    """The confidence of each comparison: 1 - alpha divided by the comparisons (Bonferroni)."""
    level = 1 - summary["comparison_alpha"]
    return sp.percent(level, 0 if round(level * 100, 6).is_integer() else 1)


def correction(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    """The multiple-comparison correction, stated: Bonferroni over the comparisons with the control."""
    _ = sp.gettext
    comparisons = len(summary["comparisons"])
    if comparisons == 1:
        return _("Compared with the control, {control}: one comparison, no correction needed.").format(
            control=sp.label(summary["arms"][0]["name"]))
    return _("Each arm is compared with the control, {control}: {m} comparisons, each at alpha = {each} instead of "
             "{alpha} (Bonferroni), so the chance of any false positive stays at most {alpha}.").format(
        control=sp.label(summary["arms"][0]["name"]), m=comparisons, each=sp.significant(summary["comparison_alpha"]),
        alpha=sp.significant(summary["alpha"]))


def promote_hint(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str | None:
    """When an arm serving another model version converts better than the control by the always-valid test, and
    is not promoted yet: the command that makes its version current."""
    if not summary["managed"] or summary["promoted"]:
        return None
    serves = {arm["name"]: arm["serves"] for arm in summary["arms"]}
    better = [arm for arm, c in summary["comparisons"].items()
              if c["conversion"]["always_valid"]["decision"] == "treatment_better"
              and serves[arm].startswith("model:") and serves[arm] != "model:current"]
    if not better:
        return None
    best = max(better, key=lambda arm: summary["comparisons"][arm]["conversion"]["difference"])
    return sp.gettext("Promote: {arm} converts better than the control. `recsys ab promote {name} {arm}` makes "
                      "{version} the current model.").format(arm=best, name=summary["experiment"],
                                                             version=serves[best].removeprefix("model:"))


def cuped_line(summary: dict[str, Any], arm: str, sp: Speaker = ENGLISH) -> str:
    """Conversion's always-valid interval with CUPED beside the raw one, and how much variance CUPED removed."""
    comparison = summary["comparisons"][arm]
    raw, cuped = comparison["conversion"]["always_valid"], comparison["cuped"]
    adjusted = cuped["conversion"]["always_valid"]
    return sp.gettext("With CUPED (each customer's spend in the {days} days before their first exposure): "
                      "always-valid interval {cuped} against {raw} unadjusted; {reduction} less variance of the "
                      "difference, so about {reduction} fewer customers for the same precision.").format(
        days=sp.number(cuped["pre_period_days"], 0), cuped=interval(adjusted["ci_low"], adjusted["ci_high"], sp),
        raw=interval(raw["ci_low"], raw["ci_high"], sp),
        reduction=sp.percent(max(cuped["conversion_variance_reduction"], 0.0), 0))


def fixed_horizon_note(summary: dict[str, Any], arm: str, sp: Speaker = ENGLISH) -> str:
    _ = sp.gettext
    fixed = summary["comparisons"][arm]["conversion"]["fixed_horizon"]
    return _("For reference, the fixed-horizon z-test (valid only for one look at a sample size fixed in advance, "
             "not for this page, which looks every few seconds): p = {p}, {confidence} interval {bounds}.").format(
        p=p_value(fixed["p_value"], sp), confidence=confidence(summary, sp),
        bounds=interval(fixed["ci_low"], fixed["ci_high"], sp))


def sample_ratio_alarm(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str | None:
    """The alarm text when exposed customers per arm do not follow the configured split, else None."""
    srm = summary["sample_ratio"]
    if not srm["mismatch"]:
        return None
    shares = ", ".join(f"{sp.label(arm)} {sp.percent(share)}"
                       for arm, share in (srm["observed_shares"] or {}).items())
    expected = ", ".join(f"{sp.label(arm)} {sp.percent(share, 0)}" for arm, share in srm["expected_shares"].items())
    return sp.gettext("Sample-ratio mismatch: exposed customers per arm {observed}, against {expected} configured "
                      "(chi-square p = {p}). The assignment or the logging is broken; do not trust the comparison "
                      "until it is fixed.").format(observed=shares, expected=expected, p=p_value(srm["p_value"], sp))


def serves(label: str, sp: Speaker = ENGLISH) -> str:
    """What an arm serves, in words: best-sellers, the current model, or model <version>."""
    _ = sp.gettext
    if label == "model:current":
        return _("the current model")
    if label.startswith("model:"):
        return _("model {version}").format(version=label.removeprefix("model:"))
    return sp.label(label)


def arm_colours(arms: list[str]) -> dict[str, str]:
    """One colour per arm, the control first: high contrast on Streamlit's light and dark backgrounds alike."""
    return {arm: ARM_PALETTE[i % len(ARM_PALETTE)] for i, arm in enumerate(arms)}


def render_summary(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    """The summary for a terminal: per arm what it serves and its numbers, then the page's own sentences."""
    _ = sp.gettext
    lines = [_("A/B experiment {name}: a conversion is a purchase of a shown product within {days} days.").format(
        name=summary["experiment"], days=sp.number(summary["attribution_days"], 0))]
    if not summary["causal"]:
        lines.append(_(NOT_CAUSAL))
    header = (_("arm"), _("serves"), _("share"), _("exposed customers"), _("converted customers"), _("conversion"),
              _("revenue per exposed customer"))
    arms = {arm["name"]: arm for arm in summary["arms"]}
    rows = [[sp.label(name), serves(arms[name]["serves"], sp), f"{arms[name]['percent']}%",
             sp.number(g["exposed_customers"]), sp.number(g["converted_customers"]), sp.percent(g["conversion_rate"]),
             sp.money(g["revenue_per_exposed"])] for name, g in summary["groups"].items()]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines += ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
              for row in [list(header), *rows]]
    for arm in summary["comparisons"]:
        lines += [verdict(summary, arm, sp), cuped_line(summary, arm, sp), fixed_horizon_note(summary, arm, sp)]
    lines.append(correction(summary, sp))
    lines.append(sample_ratio_alarm(summary, sp) or _("Sample ratio as configured (chi-square p = {p}).").format(
        p=p_value(summary["sample_ratio"]["p_value"], sp)))
    hint = promote_hint(summary, sp)
    if hint is not None:
        lines.append(hint)
    if summary["bandit"] is not None:
        lines.append(bandit_line(summary, sp))
    return "\n".join(lines)


def bandit_line(summary: dict[str, Any], sp: Speaker = ENGLISH) -> str:
    """The bandit's present split and each arm's inverse-probability-weighted conversion, with its caveat."""
    _ = sp.gettext
    bandit = summary["bandit"]
    shares = ", ".join(f"{sp.label(arm)} {share}%" for arm, share in bandit["history"][-1]["shares"].items())
    weighted = ", ".join(f"{sp.label(arm)} {sp.percent(rate)}" for arm, rate in bandit["ipw_conversion"].items())
    return _("Bandit (Thompson sampling, re-weighted every {minutes} minutes, at least {floor} per arm): the split "
             "is {shares} now; conversion weighted by the inverse of each customer's assignment chance: {weighted}. "
             "An adaptive split biases the plain per-arm figures and the intervals above assume a fixed split; the "
             "weighted ones do not.").format(minutes=sp.number(bandit["interval_minutes"], 0),
                                             floor=sp.percent(bandit["min_share"], 0), shares=shares,
                                             weighted=weighted)


def default_experiment(experiments: dict[str, Any]) -> str:
    """The experiment the page opens on: the one with the most exposed customers (a replay's start is in the
    history's time and a live one's in wall time, so the starts do not say which is newer), else the live one."""
    listed = experiments["experiments"]
    if not listed:
        return str(experiments["live"])
    return str(max(listed, key=lambda e: (e["exposed_customers"], e["live"]))["name"])
