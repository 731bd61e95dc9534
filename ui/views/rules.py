"""Rules: the strongest association rules, and what goes with a product."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import api_path, fetch

st.title("Association rules")
cols = st.columns(4)
level = cols[0].radio("Level", ["product", "category"], horizontal=True)
sort = cols[1].selectbox("Sort by", ["lift", "confidence", "support"])
min_confidence = cols[2].slider("Min confidence", 0.0, 1.0, 0.1, 0.05)
min_lift = cols[3].slider("Min lift", 0.0, 20.0, 1.0, 0.5)
body = fetch("/rules", level=level, sort=sort, min_confidence=min_confidence, min_lift=min_lift, limit=200)
if body is None:
    st.stop()
rules = pd.DataFrame(body["rules"])
st.caption(f"Model {body['model_version']}: {body['total']:,} {level} rules pass the filters; the top "
           f"{len(rules)} by {sort}.")
if rules.empty:
    st.info("No rule passes these filters.")
else:
    if "names" in rules:  # product rules: names where the catalogue has them, ids otherwise
        labelled = [[name or product for product, name in zip(a + c, names, strict=True)]
                 for a, c, names in zip(rules["antecedents"], rules["consequents"], rules["names"], strict=True)]
        sizes = list(rules["antecedents"].map(len))
        rules["antecedents"] = [labels[:k] for labels, k in zip(labelled, sizes, strict=True)]
        rules["consequents"] = [labels[k:] for labels, k in zip(labelled, sizes, strict=True)]
    rules["rule"] = rules["antecedents"].map(" + ".join) + " -> " + rules["consequents"].map(" + ".join)
    st.altair_chart(alt.Chart(rules).mark_circle().encode(
        x="support:Q", y="confidence:Q", size="lift:Q", color=alt.Color("lift:Q", scale=alt.Scale(scheme="viridis")),
        tooltip=["rule", "support", "confidence", "lift"]), use_container_width=True)
    st.dataframe(rules[["rule", "support", "confidence", "lift"]], hide_index=True, use_container_width=True)

st.subheader("What goes with this product")
product = st.text_input("Product id").strip()
if product:
    related = fetch(api_path("products", product, "related"))
    if related is None:
        st.warning(f"No product {product!r} in the published model.")
    elif not related["rules"]:
        st.info(f"{related['name'] or product}: no rule starts from this product.")
    else:
        st.markdown(f"**{related['name'] or product}** ({related['category']})")
        st.dataframe(pd.DataFrame(related["rules"]), hide_index=True, use_container_width=True)
