"""SHR (sentence-level hallucination ratio): describe images, judge every sentence, compute the metrics."""

from hadpo.eval.shr.config import ShrConfig
from hadpo.eval.shr.run import run_shr

__all__ = ["ShrConfig", "run_shr"]
