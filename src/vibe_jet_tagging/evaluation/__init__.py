"""How good the tags are: metrics with intervals, classical baselines, the report.

- :mod:`.metrics`: AUC, gluon rejection, accuracy, with bootstrap and binomial intervals;
- :mod:`.baselines`: the multiplicity cut and a logistic regression on jet observables;
- :mod:`.report`: the report's tables, plots and HTML page (``vjt evaluate``, ``compare``).
"""
