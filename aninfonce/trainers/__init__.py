"""Trainers: how one run of each kind trains and evaluates, all through the one
step loop in :mod:`aninfonce.trainers.loop`. Experiments (``aninfonce.experiments``)
hold grids, claims and figures only and call into these."""
