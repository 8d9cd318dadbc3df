"""How an R^2 was fitted and scored; every results row that holds one names
its protocol (the reading half and the metrics share these names)."""

SAME_SAMPLE = "same-sample"  # [code] the authors fit and score on the same 4096 samples
HELD_OUT = "held-out"  # fit on one fresh sample, score on another
