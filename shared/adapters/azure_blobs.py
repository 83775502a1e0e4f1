"""Azure Blob Storage behind the BlobStore port (azure-storage-blob): one container.

The container is made on first use when it is missing (Azurite; in Azure the Bicep makes it,
private). Blob names are the port's ``/``-separated paths.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

# The container of the feed records quarantined by reference (infra/bicep/modules/storage.bicep).
QUARANTINE_CONTAINER = "quarantined-records"


class AzureBlobStore:
    """One container of a storage account's Blob service."""

    def __init__(self, service: BlobServiceClient, container: str = QUARANTINE_CONTAINER) -> None:
        self._container: Any = service.get_container_client(container)
        self._ready = False
        self._lock = threading.Lock()

    @classmethod
    def from_connection_string(cls, connection_string: str) -> AzureBlobStore:
        return cls(BlobServiceClient.from_connection_string(connection_string))

    def _made(self) -> None:
        with self._lock:
            if not self._ready:
                # Made already: the usual case (by the Bicep, or by another worker).
                with contextlib.suppress(ResourceExistsError):
                    self._container.create_container()
                self._ready = True

    def put(self, name: str, data: bytes) -> None:
        try:
            self._container.upload_blob(name, data, overwrite=True)
        except ResourceNotFoundError:
            self._made()
            self._container.upload_blob(name, data, overwrite=True)

    def get(self, name: str) -> bytes | None:
        try:
            data: bytes = self._container.download_blob(name).readall()
        except ResourceNotFoundError:
            return None
        return data

    def delete(self, name: str) -> None:
        with contextlib.suppress(ResourceNotFoundError):
            self._container.delete_blob(name)

    def written_before(self, before: datetime) -> Iterator[str]:
        try:
            for blob in self._container.list_blobs():
                if blob.last_modified < before:
                    yield str(blob.name)
        except ResourceNotFoundError:  # no container yet: nothing was ever quarantined by reference
            return
