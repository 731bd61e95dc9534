"""What the API talks to besides its own code: the Kafka producers and the hot path's Redis connection."""
