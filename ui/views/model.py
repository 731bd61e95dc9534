"""Model: the published version, its offline evaluation against the baselines, and the version history."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import fetch, when

st.title("Model")
card = fetch("/model")
if card is None:
    st.stop()
window = card["data_window"]
cols = st.columns(4)
cols[0].metric("version", card["version"])
cols[1].metric("data from", window["start"][:10])
cols[2].metric("data to", window["end"][:10])
cols[3].metric("customers x products", f"{card['matrix']['customers']:,} x {card['matrix']['products']:,}")

evaluation = card["evaluation"]
st.subheader("Offline evaluation")
st.caption(f"Temporal split: trained before {evaluation['split']}, tested to {evaluation['end'][:10]}; settings and "
           f"blend weights chosen on validation from {evaluation['validation_split']}.")
metric = st.selectbox("Metric", ["ndcg@10", "precision@5", "recall@10", "map@10", "hit_rate@10", "coverage@10"])
rows = [{"variant": variant.replace("_", " "), "model": name, **values}
        for variant, models in evaluation["table"].items() for name, values in models.items()]
table = pd.DataFrame(rows)
st.altair_chart(alt.Chart(table).mark_bar().encode(
    x=alt.X(f"{metric}:Q"), y=alt.Y("model:N", sort=None), color=alt.condition(
        alt.datum.model == "hybrid", alt.value("#DD8452"), alt.value("#4C72B0")),
    row=alt.Row("variant:N", title=None), tooltip=["model", f"{metric}:Q"]), use_container_width=True)
st.dataframe(table[["variant", "model", "customers", "precision@5", "recall@10", "ndcg@10", "map@10",
                    "hit_rate@10", "coverage@10"]], hide_index=True, use_container_width=True)
st.json({"blend weights": card["weights"], "settings": card["params"]}, expanded=False)

st.subheader("Versions")
versions = fetch("/model/versions")
if versions:
    history = pd.DataFrame(versions["versions"])
    history["published"] = history["published_at"].map(when)
    history["ndcg@10 (all items)"] = history["headline"].map(lambda h: (h or {}).get("all_items", {}).get("ndcg@10"))
    st.dataframe(history[["version", "published", "current", "ndcg@10 (all items)"]], hide_index=True,
                 use_container_width=True)
