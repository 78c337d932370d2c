"""Figures as PNG: learning curves, architecture weights, frame strips and architecture diagrams (Fig. 5)."""
