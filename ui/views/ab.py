"""A/B test: pick an experiment; each arm's verdict against the control from the always-valid test (Bonferroni-
corrected), a promote hint, the sample-ratio check, conversion per arm over the experiment's own days with 95%
bands, and each arm's uplift with its always-valid interval day by day."""

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from common.settings import get_settings
from ui.client import ActionRefused, ApiUnavailable
from ui.experiment import (
    NOT_CAUSAL,
    arm_colours,
    bandit_line,
    correction,
    cuped_line,
    default_experiment,
    fixed_horizon_note,
    interval,
    p_value,
    promote_hint,
    sample_ratio_alarm,
    serves,
    verdict,
)
from ui.i18n import Speaker
from ui.shared import api_path, client, fetch, plot, speaker

sp = speaker()
_ = sp.gettext
st.title(_("A/B test"))


def pick_experiment() -> str | None:
    listed = fetch("/ab/experiments")
    if listed is None:
        return None
    names = [e["name"] for e in listed["experiments"]] or [listed["live"]]
    wanted = st.query_params.get("experiment") or default_experiment(listed)
    labels = {e["name"]: _("{name} ({kind}, started {day})").format(
        name=e["name"], kind=_("replayed history") if e["replayed"] else _("live requests"),
        day=sp.day(e["started_at"])) for e in listed["experiments"]}
    chosen = st.selectbox(_("Experiment"), names, index=names.index(wanted) if wanted in names else 0,
                          format_func=lambda name: labels.get(
                              name, _("{name} (live requests, no exposures yet)").format(name=name)))
    st.query_params["experiment"] = chosen
    with st.expander(_("Every experiment")):
        st.dataframe(pd.DataFrame([{
            _("experiment"): e["name"] + (" *" if e["live"] else ""),
            _("state"): _("ended") if e["state"] == "ended" else _("running"),
            _("arms"): ", ".join(f"{sp.label(a['name'])}: {serves(a['serves'], sp)} ({a['percent']}%)"
                                 for a in e["arms"]),
            _("started"): sp.day(e["started_at"]), _("exposed customers"): sp.number(e["exposed_customers"]),
            _("promoted"): sp.label(e["promoted"]["arm"]) if e["promoted"] else "",
        } for e in listed["experiments"]]), hide_index=True, width="stretch")
        st.caption(_("* the live experiment: the one /recommend serves now."))
    return str(chosen)


@st.fragment(run_every=get_settings().ui_refresh_s * 2)
def experiment(name: str) -> None:
    summary = fetch("/ab/summary", experiment=name)
    timeline = fetch("/ab/timeline", experiment=name)
    if summary is None or timeline is None:
        return
    groups = summary["groups"]
    if not any(g["exposed_customers"] for g in groups.values()):
        st.info(_("No exposures yet: serve `/recommend`, or replay with `recsys replay ... --simulate-visits`."))
        return
    if not summary["causal"]:
        st.warning(_(NOT_CAUSAL))
    alarm = sample_ratio_alarm(summary, sp)
    if alarm is not None:
        st.error(alarm)
    for arm in summary["comparisons"]:
        st.markdown(f"### {verdict(summary, arm, sp)}")
    hint = promote_hint(summary, sp)
    if hint is not None:
        st.success(hint)
    st.caption(correction(summary, sp))
    colours = arm_colours([sp.label(arm["name"]) for arm in summary["arms"]])
    for arm, comparison in summary["comparisons"].items():
        arm_metrics(summary, arm, comparison)
    if summary["bandit"] is not None:
        st.markdown(bandit_line(summary, sp))
        shares = [{"group": sp.label(arm), "at": row["at"], "share": share / 100}
                  for row in summary["bandit"]["history"] for arm, share in row["shares"].items()]
        plot(shares_chart(pd.DataFrame(shares), colours, sp))
    day_title = _("event-time day of the replayed history") if timeline["replayed"] else _("day (wall clock, UTC)")
    rows = [{"group": sp.label(group), **row} for group, series in timeline["series"].items() for row in series]
    if rows:
        plot(conversion_chart(pd.DataFrame(rows), colours, day_title, sp))
    uplift = [{"group": sp.label(arm), **row} for arm, series in timeline["uplift"].items() for row in series]
    if uplift:
        plot(uplift_chart(pd.DataFrame(uplift), colours, day_title, sp))
    arms = {arm["name"]: arm for arm in summary["arms"]}
    st.dataframe(pd.DataFrame([{
        _("group"): sp.label(group), _("serves"): serves(arms[group]["serves"], sp),
        _("share"): f"{arms[group]['percent']}%",
        _("exposed customers"): sp.number(g["exposed_customers"]),
        _("converted customers"): sp.number(g["converted_customers"]),
        _("conversion"): sp.percent(g["conversion_rate"]),
        _("revenue per exposed customer"): sp.money(g["revenue_per_exposed"]),
    } for group, g in groups.items()]), hide_index=True, width="stretch")
    srm = summary["sample_ratio"]
    st.caption(_("Experiment {name}: a conversion is a purchase of a shown product within {days} days; "
                 "sample-ratio chi-square p = {p}. Exposures lost by the API: {lost}.").format(
        name=summary["experiment"], p=p_value(srm["p_value"], sp),
        days=sp.number(summary["attribution_days"], 0), lost=sp.number(summary["exposures_lost"])))


def arm_metrics(summary: dict[str, Any], arm: str, comparison: dict[str, Any]) -> None:
    """One arm against the control: conversions, the uplift, its always-valid interval and p; revenue in words."""
    groups, control = summary["groups"], summary["arms"][0]["name"]
    conversion, revenue = comparison["conversion"], comparison["revenue_per_exposed"]
    cols = [*st.columns(3), *st.columns([2, 1])]
    for col, group in zip(cols, (control, arm), strict=False):
        col.metric(_("{group} conversion").format(group=sp.label(group)), sp.percent(groups[group]["conversion_rate"]),
                   help=_("{converted} of {exposed}").format(converted=sp.number(groups[group]["converted_customers"]),
                                                            exposed=sp.number(groups[group]["exposed_customers"])))
    relative = conversion["relative"]
    cols[2].metric(_("uplift"), sp.percent(conversion["difference"], signed=True),
                   delta=None if relative is None else _("{relative} relative").format(
                       relative=sp.percent(relative, 0, signed=True)))
    av = conversion["always_valid"]
    cols[3].metric(_("always-valid interval"), interval(av["ci_low"], av["ci_high"], sp, in_points=False),
                   help=_("Points of conversion; valid however often this page is looked at."))
    cols[4].metric(_("always-valid p-value"), p_value(av["p_value"], sp))
    rav = revenue["always_valid"]
    decision = rav["decision_text"]  # one of experiments.always_valid.DECISION_WORDS, in the catalogue
    st.markdown(_("**Revenue per exposed customer**: {control_name} {control}, {arm} {treatment}, difference "
                  "{difference}, always-valid interval {bounds} (p = {p}): {decision}.").format(
        control_name=sp.label(control), arm=sp.label(arm), control=sp.money(revenue["control"]),
        treatment=sp.money(revenue["treatment"]),
        difference=sp.signed(revenue["difference"], 2),
        bounds=interval(rav["ci_low"], rav["ci_high"], sp, scale=1, in_points=False), p=p_value(rav["p_value"], sp),
        decision=_(decision)))
    st.markdown(cuped_line(summary, arm, sp))
    st.caption(fixed_horizon_note(summary, arm, sp))


def shares_chart(frame: pd.DataFrame, colours: dict[str, str], sp: Speaker) -> alt.Chart:
    _ = sp.gettext
    frame["at"] = pd.to_datetime(frame["at"])
    colour = alt.Color("group:N", title=_("group"), scale=alt.Scale(domain=list(colours), range=list(colours.values())))
    chart: alt.Chart = alt.Chart(frame).mark_line(interpolate="step-after", strokeWidth=3, point=True).encode(
        x=alt.X("at:T", title=_("day (wall clock, UTC)")), y=alt.Y("share:Q", title=_("share of new customers"),
                                                                axis=alt.Axis(format="%")),
        color=colour).properties(title=_("The bandit's split over time"))
    return chart


def conversion_chart(frame: pd.DataFrame, colours: dict[str, str], day_title: str, sp: Speaker) -> alt.LayerChart:
    _ = sp.gettext
    frame["date"] = pd.to_datetime(frame["date"])
    colour = alt.Color("group:N", title=_("group"), scale=alt.Scale(domain=list(colours), range=list(colours.values())))
    base = alt.Chart(frame).encode(x=alt.X("date:T", title=day_title, axis=alt.Axis(format="%Y-%m-%d")),
                                   color=colour)
    band = base.mark_area(opacity=0.25).encode(
        y=alt.Y("ci_low:Q", title=_("conversion (cumulative)"), axis=alt.Axis(format="%")), y2="ci_high:Q")
    chart: alt.LayerChart = (band + base.mark_line(strokeWidth=3).encode(y="rate:Q")).properties(
        title=_("Conversion per group, 95% bands"))
    return chart


def uplift_chart(frame: pd.DataFrame, colours: dict[str, str], day_title: str, sp: Speaker) -> alt.LayerChart:
    _ = sp.gettext
    frame["date"] = pd.to_datetime(frame["date"])
    arms = [arm for arm in colours if arm in set(frame["group"])]
    colour = alt.Color("group:N", title=_("group"), scale=alt.Scale(domain=arms, range=[colours[a] for a in arms]))
    base = alt.Chart(frame).encode(x=alt.X("date:T", title=day_title, axis=alt.Axis(format="%Y-%m-%d")),
                                   color=colour)
    band = base.mark_area(opacity=0.2).encode(
        y=alt.Y("ci_low:Q", title=_("arm - control (conversion)"), axis=alt.Axis(format="+%")), y2="ci_high:Q")
    line = base.mark_line(strokeWidth=3).encode(y="difference:Q")
    zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="gray", strokeDash=[4, 4]).encode(y="y:Q")
    chart: alt.LayerChart = (band + line + zero).properties(
        title=_("Uplift of each arm with its always-valid interval, as it stood each day"))
    return chart


def act(path: str, body: dict[str, Any] | None, done: str) -> None:
    """A keyed action through the API; its outcome on the page."""
    key = get_settings().api_key
    assert key is not None  # the actions are only shown with a key
    try:
        client().post(path, body, key.get_secret_value())
    except ActionRefused as exc:
        st.error(_("Refused: {detail}").format(detail=exc.detail))
    except ApiUnavailable as exc:
        st.error(_("The API at {url} is not answering ({reason}): start it with `recsys serve`.").format(
            url=exc.url, reason=exc.reason))
    else:
        st.success(done)


def manage(chosen: str | None) -> None:
    """The CLI's actions (`recsys ab start / promote / stop`), behind the UI's password."""
    st.subheader(_("Manage experiments"))
    if get_settings().api_key is None:
        st.caption(_("Set RECSYS_API_KEY where the UI runs to start, promote and stop experiments here."))
        return
    summary = fetch("/ab/summary", experiment=chosen) if chosen else None
    if summary is not None and summary["managed"] and summary["state"] == "running":
        columns = st.columns(len(summary["arms"]) + 1)
        for column, arm in zip(columns, summary["arms"], strict=False):
            if arm["serves"].startswith("model:") and column.button(
                    _("Promote {arm}").format(arm=sp.label(arm["name"])), key=f"ab_promote_{arm['name']}"):
                act(api_path("ab", "experiments", chosen or "", "promote"), {"arm": arm["name"]},
                    _("{arm}'s model is the current one now.").format(arm=sp.label(arm["name"])))
        if columns[-1].button(_("Stop {name}").format(name=chosen), key="ab_stop"):
            act(api_path("ab", "experiments", chosen or "", "stop"), None,
                _("{name} ended; its final summary is kept.").format(name=chosen))
    with st.form("ab_start"):
        name = st.text_input(_("New experiment's name"), key="ab_start_name")
        arms = st.text_area(_("Arms, one per line, the control first"), key="ab_start_arms",
                            value="control=best_sellers\ncurrent=model:current")
        split = st.text_input(_("Split in percent, comma-separated (empty: even)"), key="ab_start_split")
        bandit = st.checkbox(_("Bandit: re-weight the split by Thompson sampling on conversion"), key="ab_start_bandit")
        interval, floor = st.columns(2)
        minutes = interval.number_input(_("Re-weight every (minutes)"), min_value=1.0, value=60.0,
                                        key="ab_start_interval")
        min_share = floor.number_input(_("Each arm's minimum share"), min_value=0.0, max_value=0.5, value=0.1,
                                       key="ab_start_min_share")
        if st.form_submit_button(_("Start")):
            try:
                shares = [int(part) for part in split.split(",")] if split.strip() else None
            except ValueError:
                st.error(_("The split takes whole percents, e.g. 34,33,33."))
                return
            act("/ab/experiments", {"name": name.strip(), "arms": [a.strip() for a in arms.splitlines() if a.strip()],
                                    "split": shares, "bandit": bandit, "bandit_interval_minutes": minutes,
                                    "min_share": min_share},
                _("{name} started: /recommend serves its arms now.").format(name=name.strip()))


chosen = pick_experiment()
if chosen is not None:
    experiment(chosen)
manage(chosen)
