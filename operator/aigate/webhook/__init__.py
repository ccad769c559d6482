"""`aigate webhook`: the admission webhooks in a process of their own, apart from the reconciler.

index.py keeps a watch-fed copy of exactly what decisions read; review.py answers an AdmissionReview with the same
pure policy functions the operator uses; server.py serves them over TLS (HTTP/2 by ALPN, HTTP/1.1) with probes
and metrics."""
