"""Preference data for HA-DPO (stage 01): the released data checked, or new pairs mined from a model's own outputs.

The stage's entry point is :func:`hadpo.mining.stage.run`; :mod:`hadpo.mining.mine` is the mining pipeline and
:mod:`hadpo.mining.released` the released-data path.
"""
