"""Transports: the layer under the loader that moves bytes (see base.py for the contract)."""
from .base import (ErrorKind, TransferError, TransferRequest, TransferResult, Transport,
                   TRANSIENT_HTTP_STATUSES)

__all__ = ["ErrorKind", "TransferError", "TransferRequest", "TransferResult", "Transport",
           "TRANSIENT_HTTP_STATUSES"]
