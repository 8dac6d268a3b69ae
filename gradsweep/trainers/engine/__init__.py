"""The training engine: one trial's loop and step, the data pipeline, precision and the
checks a trial makes on its own numbers. It names no balancer: it serves each balancer's
declared needs."""
