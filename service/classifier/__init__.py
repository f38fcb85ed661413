"""The spam classifier: features, training, evaluation, artifacts and data set readers.

This package imports neither Flask, Celery nor SQLAlchemy: the API, the workers and the
CLI all use it the same way.
"""

from service.classifier.types import CommentRecord, Reason, Score

__all__ = ["CommentRecord", "Reason", "Score"]
