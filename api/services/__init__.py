"""What the routes answer with, as plain async functions of the API state (so the replay's simulated visits run
the same code without HTTP)."""
