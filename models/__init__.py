"""SQLAlchemy tables. Importing this package registers every table on ``Base.metadata``."""

from models.api_key import ApiKey
from models.audit import AuditEntry
from models.author import Author, Trust
from models.base import Base
from models.classifier_version import ClassifierVersion, JobState, RetrainJob, VersionStatus
from models.comment import Comment, Status
from models.comment_count import CommentCount
from models.label import Label, LabelSource, LabelValue
from models.outbox import OutboxTask
from models.site import Site
from models.ui_session import UiSession
from models.verdict import Verdict
from models.webhook import DeliveryState, Webhook, WebhookDelivery, WebhookEvent

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Author",
    "Base",
    "ClassifierVersion",
    "Comment",
    "CommentCount",
    "DeliveryState",
    "JobState",
    "Label",
    "LabelSource",
    "LabelValue",
    "OutboxTask",
    "RetrainJob",
    "Site",
    "Status",
    "Trust",
    "UiSession",
    "Verdict",
    "VersionStatus",
    "Webhook",
    "WebhookDelivery",
    "WebhookEvent",
]
