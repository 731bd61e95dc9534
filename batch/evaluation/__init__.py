"""Offline evaluation: the temporal split (`split`), the metrics (`metrics`), choosing settings and blend weights on
validation (`tuning`), the case study's own in-sample protocol (`case_study`), what a run decided (`result`) and the
files people read (`reports`)."""
