"""Experiments: their statistics (always-valid and fixed-horizon), the causal simulator and the replay's
simulated visits. Assignment and naming, which the API's hot path and the settings need, stay light in
`common.assignment`."""
