"""Privacy-preserving linkage: agencies publish hardened Bloom-filter encodings of the people with recent
activity; a linkage service that never sees identities links them and ranks review candidates.

    key = LinkageKey(secret, epoch=3)
    bits = encode(key, RecordFields(("Ann",), "Smith", date_of_birth=dt.date(1990, 5, 1), postcode="NT1 4QT"))
    entities = link([EncodedRecord("police", token, bits), ...])
    candidates = review_candidates(entities, activity, today, key.epoch, ReviewRules(min_agencies=2))

docs/linkage.md describes the method, its parameters and the measurements behind them. The frequency attack
the encodings are measured against is in linkage.attack (with its public tables, linkage.public_tables):
not imported here, so that an adapter does not load it.
"""

from linkage.blocking import LshBlocking, candidate_pairs, pair_completeness, reduction_ratio
from linkage.candidates import ActivityEvent, ReviewCandidate, ReviewRules, candidate_id, review_candidates
from linkage.encoding import (
    DEFAULT_K,
    DEFAULT_PARAMS,
    UNHARDENED,
    EncodingParams,
    bloom_filters,
    encode,
    encode_many,
    harden,
)
from linkage.fields import KINDS, RecordFields, features, qgrams
from linkage.keys import MIN_SECRET_BYTES, LinkageKey, record_token
from linkage.link import (
    DEFAULT_THRESHOLD,
    Clustering,
    EncodedRecord,
    Entity,
    LinkParams,
    Member,
    cluster,
    link,
)
from linkage.similarity import as_packed, dice, dice_matrix, dice_one_to_many, dice_pairs

__all__ = [
    "DEFAULT_K",
    "DEFAULT_PARAMS",
    "DEFAULT_THRESHOLD",
    "KINDS",
    "MIN_SECRET_BYTES",
    "UNHARDENED",
    "ActivityEvent",
    "Clustering",
    "EncodedRecord",
    "EncodingParams",
    "Entity",
    "LinkParams",
    "LinkageKey",
    "LshBlocking",
    "Member",
    "RecordFields",
    "ReviewCandidate",
    "ReviewRules",
    "as_packed",
    "bloom_filters",
    "candidate_id",
    "candidate_pairs",
    "cluster",
    "dice",
    "dice_matrix",
    "dice_one_to_many",
    "dice_pairs",
    "encode",
    "encode_many",
    "features",
    "harden",
    "link",
    "pair_completeness",
    "qgrams",
    "record_token",
    "reduction_ratio",
    "review_candidates",
]
