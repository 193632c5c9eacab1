"""Facilitator styles, mirroring the paper's three sessions."""
from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """How a facilitator moves.

    ``amplitude`` scales every movement (head turn, nod, gesture);
    ``response_s`` is the time constant of turning toward a new speaker;
    ``nod_rate_hz`` is how often it nods while listening.
    """

    name: str
    amplitude: float
    response_s: float
    nod_rate_hz: float


STYLES = {
    'teacher': Style('teacher', amplitude=1.0, response_s=0.25, nod_rate_hz=0.6),
    'music_teacher': Style('music_teacher', amplitude=0.6, response_s=0.35, nod_rate_hz=0.45),
    'musician': Style('musician', amplitude=0.3, response_s=0.5, nod_rate_hz=0.3),
}
