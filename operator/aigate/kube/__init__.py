"""What the operator, the webhook and the gate Job share about running in Kubernetes: the API client, the names and
labels they agree on, the settings, the metrics."""
