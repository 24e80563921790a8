"""SQLAlchemy models, one module per concept; importing this package registers them all."""

from .actors import Organisation, Person, Place, Territory
from .barriers import Barrier, lesson_barriers
from .base import VISIBILITIES, SharedRecord, db, new_uid, utcnow
from .documents import Document
from .exchange import ImportBatch, ImportChange, ImportConflict, PeerKey, SignedManifest, SpreadsheetMapping
from .experiments import Experiment, ExperimentFunding, FundingAid, Lesson, LessonPerson, Procurement
from .history import ChangeLog
from .innovations import Innovation, InnovationOrganisation, Need, NeedInnovation, Theme
from .instance import InstanceSettings
from .programmes import SupportProgramme
from .reviews import Review, ReviewScore
from .users import ROLES, User
from .vocabularies import VocabularyTerm
from .workshops import (
    Board,
    NoteCategory,
    NoteTheme,
    NoteVote,
    StickyNote,
    Workshop,
    WorkshopParticipant,
    WorkshopParticipantCount,
    WorkshopSession,
    workshop_organisers,
    workshop_session_speakers,
)

__all__ = [
    "db", "SharedRecord", "VISIBILITIES", "new_uid", "utcnow",
    "Territory", "Organisation", "Person", "Place", "Theme", "Innovation", "InnovationOrganisation",
    "Need", "NeedInnovation", "Experiment", "Lesson", "LessonPerson", "Procurement", "FundingAid",
    "ExperimentFunding", "Review", "ReviewScore", "SupportProgramme", "Document", "ChangeLog",
    "InstanceSettings", "User", "ROLES", "VocabularyTerm",
    "ImportBatch", "ImportChange", "ImportConflict", "SpreadsheetMapping", "PeerKey", "SignedManifest",
    "Barrier", "lesson_barriers", "Workshop", "WorkshopSession", "WorkshopParticipant", "Board",
    "NoteCategory", "NoteTheme", "StickyNote", "NoteVote", "WorkshopParticipantCount",
    "workshop_organisers", "workshop_session_speakers",
]
