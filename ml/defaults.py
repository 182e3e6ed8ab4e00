"""Defaults shared by the ML code and the assets' run config, in a module that imports
nothing: the Dagster definitions read them when a process loads the code location, and
scikit-learn (about 2 s of CPU to import) is imported only by the runs that train or score."""

CHURN_HORIZON_DAYS = 90
CHURN_RANDOM_STATE = 42
RECOMMENDATIONS_K = 10
RECOMMENDATIONS_HORIZON_DAYS = 30
