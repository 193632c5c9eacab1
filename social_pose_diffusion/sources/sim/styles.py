"""Facilitator styles, mirroring the paper's three sessions."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Style:
    """How a facilitator moves.

    ``amplitude`` scales every movement (head turn, nod, gesture);
    ``reaction_s`` is the human reaction delay between a cue the camera
    sees (a new speaker starts to gesture, a silence ends) and the start of
    the facilitator's response, jittered by ``reaction_jitter_s`` per event;
    ``response_s`` is the time constant of the turn once it starts;
    ``nod_rate_hz`` is how often it nods while listening.
    """

    name: str
    amplitude: float
    reaction_s: float
    response_s: float
    nod_rate_hz: float
    reaction_jitter_s: float = 0.08


STYLES = {
    'teacher': Style('teacher', amplitude=1.0, reaction_s=0.25, response_s=0.25, nod_rate_hz=0.6),
    'music_teacher': Style(
        'music_teacher', amplitude=0.6, reaction_s=0.35, response_s=0.35, nod_rate_hz=0.45
    ),
    'musician': Style('musician', amplitude=0.3, reaction_s=0.45, response_s=0.5, nod_rate_hz=0.3),
}
