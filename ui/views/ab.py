"""A/B test: pick an experiment; its verdict from the always-valid test, the sample-ratio check, conversion per
group over the experiment's own days with 95% bands, and the uplift with its always-valid interval day by day."""

import altair as alt
import pandas as pd
import streamlit as st

from common.settings import get_settings
from ui.experiment import (
    GROUP_COLOURS,
    NOT_CAUSAL,
    default_experiment,
    fixed_horizon_note,
    interval,
    sample_ratio_alarm,
    verdict,
)
from ui.shared import fetch

st.title("A/B test")


def pick_experiment() -> str | None:
    listed = fetch("/ab/experiments")
    if listed is None:
        return None
    names = [e["name"] for e in listed["experiments"]] or [listed["live"]]
    wanted = st.query_params.get("experiment") or default_experiment(listed)
    labels = {e["name"]: f"{e['name']} ({'replayed history' if e['replayed'] else 'live requests'}, started "
                         f"{e['started_at'][:10]})" for e in listed["experiments"]}
    chosen = st.selectbox("Experiment", names, index=names.index(wanted) if wanted in names else 0,
                          format_func=lambda name: labels.get(name, f"{name} (live requests, no exposures yet)"))
    st.query_params["experiment"] = chosen
    return str(chosen)


@st.fragment(run_every=get_settings().ui_refresh_s * 2)
def experiment(name: str) -> None:
    summary = fetch("/ab/summary", experiment=name)
    timeline = fetch("/ab/timeline", experiment=name)
    if summary is None or timeline is None:
        return
    groups = summary["groups"]
    if not any(g["exposed_customers"] for g in groups.values()):
        st.info("No exposures yet: serve `/recommend`, or replay with `recsys replay ... --simulate-visits`.")
        return
    if not summary["causal"]:
        st.warning(NOT_CAUSAL)
    alarm = sample_ratio_alarm(summary)
    if alarm is not None:
        st.error(alarm)
    st.markdown(f"### {verdict(summary)}")
    conversion, revenue = summary["conversion"], summary["revenue_per_exposed"]
    cols = st.columns([1, 1, 1, 1.8, 1])
    for col, group in zip(cols, ("control", "treatment"), strict=False):
        col.metric(f"{group} conversion", f"{groups[group]['conversion_rate']:.1%}",
                   help=f"{groups[group]['converted_customers']} of {groups[group]['exposed_customers']}")
    relative = conversion["relative"]
    cols[2].metric("uplift", f"{conversion['difference']:+.1%}",
                   delta=None if relative is None else f"{relative:+.0%} relative")
    av = conversion["always_valid"]
    cols[3].metric("always-valid interval", interval(av["ci_low"], av["ci_high"], unit=""),
                   help="Points of conversion; valid however often this page is looked at.")
    cols[4].metric("always-valid p-value", f"{av['p_value']:.3g}")
    rav = revenue["always_valid"]
    st.markdown(f"**Revenue per exposed customer**: control {revenue['control']:,.2f}, treatment "
                f"{revenue['treatment']:,.2f}, difference {revenue['difference']:+,.2f}, always-valid interval "
                f"{interval(rav['ci_low'], rav['ci_high'], scale=1, unit='')} (p = {rav['p_value']:.3g}): "
                f"{rav['decision_text']}.")
    st.caption(fixed_horizon_note(summary))
    day_title = "event-time day of the replayed history" if timeline["replayed"] else "day (wall clock, UTC)"
    rows = [{"group": group, **row} for group, series in timeline["series"].items() for row in series]
    if rows:
        st.altair_chart(conversion_chart(pd.DataFrame(rows), day_title), use_container_width=True)
    if timeline["uplift"]:
        st.altair_chart(uplift_chart(pd.DataFrame(timeline["uplift"]), day_title), use_container_width=True)
    st.dataframe(pd.DataFrame(groups).T, use_container_width=True)
    srm = summary["sample_ratio"]
    st.caption(f"Experiment {summary['experiment']}: {summary['treatment_percent']}% of customers in treatment "
               f"(observed {srm['observed_treatment_share']:.1%}, sample-ratio chi-square p = "
               f"{srm['p_value']:.3g}); a conversion is a purchase of a shown product within "
               f"{summary['attribution_days']:g} days. Exposures lost by the API: {summary['exposures_lost']}.")


def conversion_chart(frame: pd.DataFrame, day_title: str) -> alt.LayerChart:
    frame["date"] = pd.to_datetime(frame["date"])
    colour = alt.Color("group:N", scale=alt.Scale(domain=list(GROUP_COLOURS), range=list(GROUP_COLOURS.values())))
    base = alt.Chart(frame).encode(x=alt.X("date:T", title=day_title, axis=alt.Axis(format="%Y-%m-%d")),
                                   color=colour)
    band = base.mark_area(opacity=0.25).encode(
        y=alt.Y("ci_low:Q", title="conversion (cumulative)", axis=alt.Axis(format="%")), y2="ci_high:Q")
    chart: alt.LayerChart = (band + base.mark_line(strokeWidth=3).encode(y="rate:Q")).properties(
        title="Conversion per group, 95% bands")
    return chart


def uplift_chart(frame: pd.DataFrame, day_title: str) -> alt.LayerChart:
    frame["date"] = pd.to_datetime(frame["date"])
    base = alt.Chart(frame).encode(x=alt.X("date:T", title=day_title, axis=alt.Axis(format="%Y-%m-%d")))
    band = base.mark_area(opacity=0.25, color=GROUP_COLOURS["treatment"]).encode(
        y=alt.Y("ci_low:Q", title="treatment - control (conversion)", axis=alt.Axis(format="+%")), y2="ci_high:Q")
    line = base.mark_line(strokeWidth=3, color=GROUP_COLOURS["treatment"]).encode(y="difference:Q")
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q")
    chart: alt.LayerChart = (band + line + zero).properties(
        title="Uplift with its always-valid 95% interval, as it stood each day")
    return chart


chosen = pick_experiment()
if chosen is not None:
    experiment(chosen)
