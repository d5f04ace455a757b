"""Modality Worklist (PS3.4 Annex K): the information model, the client's query, the
matching an SCP does, and the items it serves."""

from pacskit.worklist.model import MODALITY_WORKLIST_FIND, ItemStatus
from pacskit.worklist.query import WorklistQuery

__all__ = ["MODALITY_WORKLIST_FIND", "ItemStatus", "WorklistQuery"]
