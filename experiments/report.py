"""The experiment summary as text, for the terminal (`recsys ab stop`, a replay's result)."""

from __future__ import annotations

from api.schemas import AbSummary


def render_summary(result: AbSummary) -> str:
    """Per arm: exposed, converted, revenue; per arm against the control: the always-valid interval and decision
    (at the corrected alpha) beside the fixed-horizon test; the sample-ratio check."""
    confidence = f"{(1 - result.comparison_alpha) * 100:.4g}%"
    rows = [f"A/B experiment {result.experiment} (attribution {result.attribution_days:g} days of event time)"]
    if not result.causal:
        rows.append("replayed history: the orders are historical and do not depend on what was shown, so the "
                    "uplift is not the effect of showing it")
    serves = {arm.name: f"{arm.serves} {arm.percent}%" for arm in result.arms}
    rows.append(f"{'arm':<14} {'serves':<30} {'exposed':>8} {'converted':>9} {'rate':>7} {'items':>6} "
                f"{'revenue':>10} {'per exposed':>11}")
    for name, g in result.groups.items():
        rows.append(f"{name:<14} {serves.get(name, ''):<30} {g.exposed_customers:>8} {g.converted_customers:>9} "
                    f"{g.conversion_rate:>7.2%} {g.converted_items:>6} {g.revenue:>10.2f} "
                    f"{g.revenue_per_exposed:>11.2f}")
    control = result.arms[0].name if result.arms else "control"
    rows.append(f"each arm against {control}; {result.correction}")
    for arm, comparison in result.comparisons.items():
        for title, metric, fmt in (("conversion", comparison.conversion, "{:+.2%}"),
                                   ("revenue per exposed customer", comparison.revenue_per_exposed, "{:+.2f}")):
            av, fixed = metric.always_valid, metric.fixed_horizon
            relative = f" (relative {metric.relative:+.1%})" if metric.relative is not None else ""
            rows.append(f"{arm} {title}: difference {fmt.format(metric.difference)}{relative}")
            rows.append(f"  always-valid {confidence} interval {_interval(av.ci_low, av.ci_high, fmt)}, "
                        f"p = {av.p_value:.4g}: {av.decision_text}")
            rows.append(f"  fixed-horizon z-test (valid for one look only) {confidence} interval "
                        f"{_interval(fixed.ci_low, fixed.ci_high, fmt)}, p = {_number(fixed.p_value)}")
    srm = result.sample_ratio
    observed = ", ".join(f"{arm} {share:.3f}" for arm, share in (srm.observed_shares or {}).items()) or "n/a"
    expected = ", ".join(f"{arm} {share:g}" for arm, share in srm.expected_shares.items())
    rows.append(f"sample ratio: {observed} vs {expected} configured, chi-square p = {_number(srm.p_value)}"
                + (" -- MISMATCH: the split is broken, do not trust the comparison" if srm.mismatch else " (ok)"))
    if result.promoted is not None:
        done = result.promoted
        rows.append(f"promoted: {done.arm} ({done.version}) at {done.at:%Y-%m-%d %H:%M}")
    return "\n".join(rows)


def _interval(low: float | None, high: float | None, fmt: str) -> str:
    return "n/a" if low is None or high is None else f"[{fmt.format(low)}, {fmt.format(high)}]"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
