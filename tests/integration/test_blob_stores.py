"""The BlobStore port's contract, on both adapters: files (embedded) and Azure Blob Storage (Azurite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared.adapters.azure_blobs import AzureBlobStore
from shared.adapters.file_blobs import FileBlobStore
from shared.ports import BlobStore
from tests.azurite import azurite_tables  # noqa: F401  (fixture)


@pytest.fixture(params=["files", "azurite"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "files":
        yield FileBlobStore(tmp_path / "blobs")
        return
    service = BlobServiceClient.from_connection_string(request.getfixturevalue("azurite_tables"))
    yield AzureBlobStore(service, container="c" + uuid.uuid4().hex[:12])  # made on first put


def test_a_blob_is_written_read_replaced_and_deleted(blobs: BlobStore) -> None:
    name = "niche/00000000000000000001-abcdef12"
    assert blobs.get(name) is None
    data = bytes(range(256)) * 4096  # 1 MiB, every byte value
    blobs.put(name, data)
    assert blobs.get(name) == data
    blobs.put(name, b"again")  # a retried write replaces it
    assert blobs.get(name) == b"again"
    blobs.put("storm/other", b"kept")
    blobs.delete(name)
    assert blobs.get(name) is None and blobs.get("storm/other") == b"kept"
    blobs.delete(name)  # already gone: not an error


def test_the_file_store_refuses_names_that_leave_its_folder(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    for bad in ("../escape", "niche/../../escape", "/absolute", "a//b", "", "a/./b"):
        with pytest.raises(ValueError, match="not a blob name"):
            store.put(bad, b"x")
    assert not (tmp_path / "escape").exists()


def test_the_blobs_written_before_a_time_are_listed_and_no_others(blobs: BlobStore) -> None:
    assert list(blobs.written_before(datetime.now(UTC) + timedelta(hours=1))) == []  # none yet
    blobs.put("niche/a", b"1")
    blobs.put("storm/b", b"2")
    soon = datetime.now(UTC) + timedelta(minutes=5)  # the service's clock may run a little apart
    assert sorted(blobs.written_before(soon)) == ["niche/a", "storm/b"]
    assert list(blobs.written_before(datetime.now(UTC) - timedelta(hours=1))) == []
