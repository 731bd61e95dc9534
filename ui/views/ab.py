"""A/B test: conversion per group over time with 95% bands, uplift, p-value and a verdict in plain words."""

import altair as alt
import pandas as pd
import streamlit as st

from common.settings import get_settings
from ui.shared import fetch

st.title("A/B test")
SIGNIFICANCE = 0.05


def verdict(summary: dict[str, object]) -> str:
    p_value = summary["p_value"]
    uplift = float(summary["absolute_uplift"])  # type: ignore[arg-type]
    groups = summary["groups"]
    if p_value is None:
        if all(g["exposed_customers"] for g in groups.values()):  # type: ignore[attr-defined]
            return "No difference to test: both groups convert at the same rate, 0% or 100%."
        return "Not enough data yet: both groups need exposed customers."
    if float(p_value) >= SIGNIFICANCE:  # type: ignore[arg-type]
        return f"Not yet significant (p = {float(p_value):.3f}); keep the experiment running."  # type: ignore[arg-type]
    winner = "Treatment (the model)" if uplift > 0 else "Control (best-sellers)"
    return f"{winner} wins by {abs(uplift):.1%} points of conversion (p = {float(p_value):.2g})."  # type: ignore


@st.fragment(run_every=get_settings().ui_refresh_s * 2)
def experiment() -> None:
    summary = fetch("/ab/summary")
    timeline = fetch("/ab/timeline")
    if summary is None or timeline is None:
        return
    groups = summary["groups"]
    if not any(g["exposed_customers"] for g in groups.values()):
        st.info("No exposures yet: serve `/recommend`, or replay with `recsys replay ... --simulate-visits`.")
        return
    st.markdown(f"### {verdict(summary)}")
    cols = st.columns(4)
    cols[0].metric("control conversion", f"{groups['control']['conversion_rate']:.1%}",
                   help=f"{groups['control']['converted_customers']} of {groups['control']['exposed_customers']}")
    cols[1].metric("treatment conversion", f"{groups['treatment']['conversion_rate']:.1%}",
                   help=f"{groups['treatment']['converted_customers']} of {groups['treatment']['exposed_customers']}")
    relative = summary["relative_uplift"]
    cols[2].metric("uplift", f"{summary['absolute_uplift']:+.1%}",
                   delta=None if relative is None else f"{relative:+.0%} relative")
    low, high = summary["ci_low"], summary["ci_high"]
    cols[3].metric("95% interval", "-" if low is None else f"[{low:+.1%}, {high:+.1%}]")
    rows = [{"group": group, **row} for group, series in timeline["series"].items() for row in series]
    if rows:
        frame = pd.DataFrame(rows)
        frame["date"] = pd.to_datetime(frame["date"])
        base = alt.Chart(frame).encode(x=alt.X("date:T", title="event-time day"), color="group:N")
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("ci_low:Q", title="conversion (cumulative)",
                                                          axis=alt.Axis(format="%")), y2="ci_high:Q")
        st.altair_chart(band + base.mark_line().encode(y="rate:Q"), use_container_width=True)
    st.dataframe(pd.DataFrame(groups).T, use_container_width=True)
    st.caption(f"Experiment {summary['experiment']}: {summary['treatment_percent']}% of customers in treatment; a "
               f"conversion is a purchase of a shown product within {summary['attribution_days']:g} days. "
               f"Exposures lost by the API: {summary['exposures_lost']}.")


experiment()
