"""The embedded world's oracles: independent judges that read pixels only, never generation metadata.

One module per job: `perception` (what a picture shows: `observe`), `alignment` (does it show what the
prompt asks for), `technical` (blur, noise, compression), `aesthetic` (the declared composition rules)
and `scorer` (all three as the registered "oracle" scorer). The names below are the package's public face.
"""

from t2i_guidance.world.oracles.aesthetic import (
    AestheticResult,
    aesthetic_score,
    colour_difference,
    composition_score,
)
from t2i_guidance.world.oracles.alignment import (
    POSITION_CHECKS,
    AlignmentResult,
    alignment_checks,
    alignment_score,
    compared_checks,
    judge_alignment,
    judge_extended_alignment,
    relation_holds,
    request_matches,
    requested_pairs,
)
from t2i_guidance.world.oracles.perception import (
    COLOUR_NAMES,
    Observation,
    SeenObject,
    observation_of_scene,
    observe,
    position_phrase,
    to_array,
)
from t2i_guidance.world.oracles.scorer import OracleScorer
from t2i_guidance.world.oracles.technical import (
    ISSUE_WORDS,
    TechnicalResult,
    degradation_levels,
    technical_score,
)

__all__ = [
    "COLOUR_NAMES", "ISSUE_WORDS", "POSITION_CHECKS",
    "AestheticResult", "AlignmentResult", "Observation", "OracleScorer", "SeenObject", "TechnicalResult",
    "aesthetic_score", "alignment_score", "colour_difference", "composition_score", "degradation_levels",
    "alignment_checks", "compared_checks", "judge_alignment", "judge_extended_alignment", "observation_of_scene", "observe", "position_phrase",
    "relation_holds", "request_matches", "requested_pairs", "technical_score", "to_array",
]
