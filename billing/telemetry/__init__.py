"""What operators see: structured logs (`logs`) and Prometheus metrics (`metrics`).

Imported by every layer (it imports nothing of billing but the pure `domain.cards`)."""
