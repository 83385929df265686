"""Tests of the metrics registry, performance logger, alerts, notifiers and collector."""
