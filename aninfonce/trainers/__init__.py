"""Trainers: how one run of each kind trains and evaluates, all through the one
step loop in :mod:`aninfonce.trainers.loop`. Studies (``aninfonce.studies``)
hold the grids and call into these; the analyses hold claims and figures."""
