"""The Query/Retrieve SCP's storage index: stored instances in an embedded SQLite database,
answering C-FIND (PS3.4 C.4.1) and choosing what C-GET and C-MOVE send (C.4.2, C.4.3)."""

from dimse.qr.index import Index, IndexingError, InstanceRecord, QueryError, ReconcileReport

__all__ = ["Index", "IndexingError", "InstanceRecord", "QueryError", "ReconcileReport"]
