"""The learned ranker: candidates from every generator, features of the customer, the product and the pair, and
LightGBM's LambdaMART over them (`model`), trained on labels after a cut-off (`train`)."""
