"""Diagnostic probes: a trained Q-function against its data's returns, and a supervised grasp-outcome classifier."""
