"""The shared contract: settings, event schemas, Redis key layout, data loading."""
