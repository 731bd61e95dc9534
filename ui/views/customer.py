"""Customer: purchases, RFM and segment, recommendations as each A/B group sees them, and what was bought after."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import api_path, fetch, when

st.title("Customer")
latest = fetch("/stream/stats")
recent_ids = list(dict.fromkeys(p["customer_id"] for p in (latest or {}).get("latest", [])))
default = st.query_params.get("customer_id", recent_ids[0] if recent_ids else "")
picked = st.selectbox("Recent customers", recent_ids, index=None, placeholder="pick one who just bought")
customer_id = st.text_input("Customer id", value=picked or default).strip()

if not customer_id:
    st.info("Type a customer id, or pick one of the customers who just bought (needs the stream running).")
    st.stop()
view = fetch(api_path("customers", customer_id))
if view is None:
    st.warning(f"No customer {customer_id!r} in the stream or the model.")
    st.stop()

rfm = view["rfm"]
live = view.get("live_segment") or {}
cols = st.columns(3)
cols[0].metric("segment, last night", (view.get("segment") or {}).get("segment", "-"),
               help="From the published model (the nightly batch).")
cols[1].metric("segment, live", live.get("segment", "-"),
               help="Today's RFM from the stream, scored with last night's quintile edges"
                    + (f" (cut at {live['cut_points_as_of'][:10]})" if live else ""))
cols[2].metric("orders", f"{int(rfm.get('orders', 0)):,}")
figures = st.columns(3)
figures[0].metric("spent", f"{rfm.get('monetary_cents', 0) / 100:,.2f}")
figures[1].metric("recency (days)", "-" if view["recency_days"] is None else f"{view['recency_days']:.1f}")
figures[2].metric("last purchase", when(rfm.get("last_ts")))
if live:
    st.caption(f"Live R/F/M scores {live['r']}/{live['f']}/{live['m']} against last night's "
               f"{(view.get('segment') or {}).get('r', '-')}/{(view.get('segment') or {}).get('f', '-')}/"
               f"{(view.get('segment') or {}).get('m', '-')}.")

profile = view.get("profile")
if profile:
    about = st.columns(4)
    about[0].metric("department", profile.get("region") or "-")
    about[1].metric("city", profile.get("city") or "-")
    about[2].metric("gender", profile.get("gender") or "-")
    about[3].metric("age band", profile.get("age_band") or "-")
else:
    st.caption("No profile for this customer (the customers table has none, or it was not sent).")

st.subheader("Purchase timeline (latest products)")
recent = pd.DataFrame(view["recent"])
if recent.empty:
    st.info("No live purchases for this customer yet (the stream has not seen them).")
else:
    recent["when"] = pd.to_datetime(recent["last_purchased_at"], unit="s", utc=True)
    recent["product"] = recent["name"].fillna(recent["product_id"])
    st.altair_chart(alt.Chart(recent).mark_circle(size=90).encode(
        x=alt.X("when:T", title="last purchased"), y=alt.Y("product:N", title="product", sort="-x"),
        tooltip=["product_id", "product", "category", "when"]).properties(height=min(30 * len(recent) + 40, 500)),
        use_container_width=True)

st.subheader("Recommendations per A/B group")
preview = fetch("/recommend/preview", customer_id=customer_id, k=10)
if preview is not None:
    st.caption(f"Model {preview['model_version']}; this customer is in the **{preview['assigned_group']}** group"
               + (" (cold start: unknown to the model)" if preview["cold_start"] else ""))
    for column, (group, shown) in zip(st.columns(2), preview["groups"].items(), strict=True):
        column.markdown(f"**{group}** ({shown['strategy'].replace('_', ' ')})")
        column.dataframe(pd.DataFrame(shown["items"])[["product_id", "name", "score", "reason"]], hide_index=True,
                         use_container_width=True)

st.subheader("Shown to them, and bought after")
exposures = fetch(api_path("customers", customer_id, "exposures"))
if exposures and exposures["shown"]:
    shown = pd.DataFrame(exposures["shown"])
    shown["shown"] = shown["shown_at"].map(when)
    shown["bought after"] = shown["bought_at"].map(when)
    st.dataframe(shown[["product_id", "name", "shown", "bought after"]], hide_index=True, use_container_width=True)
else:
    st.info("Nothing shown to this customer yet (exposures come from `/recommend` or a replay with "
            "`--simulate-visits`).")
