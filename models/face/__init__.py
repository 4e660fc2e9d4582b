"""Unblur's own face restorer: data preparation, degradations, network, training, evaluation."""
