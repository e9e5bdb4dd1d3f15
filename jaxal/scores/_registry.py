"""The registry of acquisition scores (``task="classification"`` or ``"regression"``)."""

from jaxal._registry import Registry

SCORES = Registry("score")
register = SCORES.register
get = SCORES.get
names = SCORES.names
