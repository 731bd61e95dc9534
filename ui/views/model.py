"""Model: the published version, its offline evaluation against the baselines, and the version history."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import fetch, plot, speaker

sp = speaker()
_ = sp.gettext
METRICS = {"ndcg@10": _("NDCG@10 (ranking quality)"), "precision@5": _("precision@5"), "recall@10": _("recall@10"),
           "map@10": _("MAP@10"), "hit_rate@10": _("hit rate@10 (a hit in the top 10)"),
           "coverage@10": _("coverage@10 (share of the catalogue shown)")}

st.title(_("Model"))
card = fetch("/model")
if card is None:
    st.stop()
window = card["data_window"]
st.markdown(_("Published version `{version}`.").format(version=card["version"]))
cols = st.columns(3)
cols[0].metric(_("data from"), sp.day(window["start"]))
cols[1].metric(_("data to"), sp.day(window["end"]))
cols[2].metric(_("customers by products"), f"{sp.number(card['matrix']['customers'])} x "
                                          f"{sp.number(card['matrix']['products'])}")

evaluation = card["evaluation"]
st.subheader(_("Offline evaluation"))
st.caption(_("Temporal split: trained before {split}, tested to {end}; settings and blend weights chosen on "
             "validation from {validation}.").format(split=sp.day(evaluation["split"]), end=sp.day(evaluation["end"]),
                                                     validation=sp.day(evaluation["validation_split"])))
if evaluation.get("evaluated_in"):
    st.caption(_("This version was refitted on the latest data with the settings that the evaluation made in "
                 "version {version} chose; the table is that evaluation's.").format(version=evaluation["evaluated_in"]))
metric = st.selectbox(_("Metric"), list(METRICS), format_func=METRICS.__getitem__)
served = evaluation.get("served", "hybrid")
rows = [{"variant": sp.label(variant), "model": sp.label(name), "served": name == served, **values}
        for variant, models in evaluation["table"].items() for name, values in models.items()]
table = pd.DataFrame(rows)
plot(alt.Chart(table).mark_bar().encode(
    x=alt.X(f"{metric}:Q", title=METRICS[metric]), y=alt.Y("model:N", sort=None, title=None,
                                                          axis=alt.Axis(labelLimit=260)),
    color=alt.condition(alt.datum.served, alt.value("#DD8452"), alt.value("#4C72B0")),
    row=alt.Row("variant:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelFontSize=13)),
    tooltip=[alt.Tooltip("model:N", title=_("model")), alt.Tooltip(f"{metric}:Q", title=METRICS[metric],
                                                                   format=".4f")],
).properties(title=_("Each model against the baselines (orange: the one served)")))
shown = table[["variant", "model", "customers", "precision@5", "recall@10", "ndcg@10", "map@10", "hit_rate@10",
               "coverage@10"]].rename(columns={
    "variant": _("evaluated on"), "model": _("model"), "customers": _("customers"), "precision@5": _("precision@5"),
    "recall@10": _("recall@10"), "hit_rate@10": _("hit rate@10"), "coverage@10": _("coverage@10")})
st.dataframe(shown, hide_index=True, width="stretch")
with st.expander(_("Blend weights and settings")):
    st.json({"weights": card["weights"], "settings": card["params"]}, expanded=False)

st.subheader(_("Versions"))
versions = fetch("/model/versions")
if versions:
    history = pd.DataFrame(versions["versions"])
    st.dataframe(pd.DataFrame({
        _("version"): history["version"], _("published"): history["published_at"].map(sp.when),
        _("served now"): history["current"].map(lambda current: _("yes") if current else ""),
        _("NDCG@10 (all products)"): history["headline"].map(
            lambda h: sp.number((h or {}).get("all_items", {}).get("ndcg@10"), 4)),
    }), hide_index=True, width="stretch")
