"""Churn scores and product recommendations: thin assets over the pure ``ml`` package."""
