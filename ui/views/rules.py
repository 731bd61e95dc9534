"""Rules: the strongest association rules, and what goes with a product."""

import altair as alt
import pandas as pd
import streamlit as st

from ui.shared import api_path, fetch, plot, speaker

sp = speaker()
_ = sp.gettext
LEVELS = {"product": _("product"), "category": _("category")}
SORTS = {"lift": _("lift"), "confidence": _("confidence"), "support": _("support")}

st.title(_("Association rules"))
cols = st.columns(4)
level = cols[0].radio(_("Level"), list(LEVELS), horizontal=True, format_func=LEVELS.__getitem__)
sort = cols[1].selectbox(_("Sort by"), list(SORTS), format_func=SORTS.__getitem__)
min_confidence = cols[2].slider(_("Min confidence"), 0.0, 1.0, 0.1, 0.05)
min_lift = cols[3].slider(_("Min lift"), 0.0, 20.0, 1.0, 0.5)
body = fetch("/rules", level=level, sort=sort, min_confidence=min_confidence, min_lift=min_lift, limit=200)
if body is None:
    st.stop()
rules = pd.DataFrame(body["rules"])
st.caption(_("Model {version}: {total} {level} rules pass the filters; the top {shown} by {sort}.").format(
    version=body["model_version"], total=sp.number(body["total"]), level=LEVELS[level], shown=len(rules),
    sort=SORTS[sort]))
if rules.empty:
    st.info(_("No rule passes these filters."))
else:
    if "names" in rules:  # product rules: names where the catalogue has them, ids otherwise
        labelled = [[name or product for product, name in zip(a + c, names, strict=True)]
                    for a, c, names in zip(rules["antecedents"], rules["consequents"], rules["names"], strict=True)]
        sizes = list(rules["antecedents"].map(len))
        rules["antecedents"] = [labels[:k] for labels, k in zip(labelled, sizes, strict=True)]
        rules["consequents"] = [labels[k:] for labels, k in zip(labelled, sizes, strict=True)]
    rules["rule"] = rules["antecedents"].map(" + ".join) + " → " + rules["consequents"].map(" + ".join)
    plot(alt.Chart(rules).mark_circle().encode(
        x=alt.X("support:Q", title=_("support")), y=alt.Y("confidence:Q", title=_("confidence")),
        size=alt.Size("lift:Q", title=_("lift")),
        color=alt.Color("lift:Q", title=_("lift"), scale=alt.Scale(scheme="viridis")),
        tooltip=[alt.Tooltip("rule:N", title=_("rule")), alt.Tooltip("support:Q", title=_("support"), format=".4f"),
                 alt.Tooltip("confidence:Q", title=_("confidence"), format=".2f"),
                 alt.Tooltip("lift:Q", title=_("lift"), format=".2f")],
    ).properties(title=_("Each rule: how often the basket holds it, how sure it is, how much it lifts"), height=360))
    st.dataframe(pd.DataFrame({
        _("rule"): rules["rule"], _("support"): rules["support"].map(lambda v: sp.number(v, 4)),
        _("confidence"): rules["confidence"].map(sp.percent), _("lift"): rules["lift"].map(lambda v: sp.number(v, 2)),
    }), hide_index=True, width="stretch")

st.subheader(_("What goes with this product"))
product = st.text_input(_("Product id")).strip()
if product:
    related = fetch(api_path("products", product, "related"))
    if related is None:
        st.warning(_("No product {product} in the published model.").format(product=product))
    elif not related["rules"]:
        st.info(_("{product}: no rule starts from this product.").format(product=related["name"] or product))
    else:
        st.markdown(f"**{related['name'] or product}** ({related['category']})")
        shown = pd.DataFrame(related["rules"])
        st.dataframe(pd.DataFrame({
            _("product"): shown["name"].fillna(shown["product_id"]) if "name" in shown else shown["product_id"],
            _("confidence"): shown["confidence"].map(sp.percent),
            _("lift"): shown["lift"].map(lambda v: sp.number(v, 2)),
            _("product id"): shown["product_id"]}), hide_index=True, width="stretch")
