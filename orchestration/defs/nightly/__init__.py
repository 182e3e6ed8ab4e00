"""The nightly build: the warehouse, the ML scores and the audiences, on a schedule."""
