"""What spiders yield: frozen msgspec Structs that know which storage writer keeps them.

Scrapy recognises items through ``itemadapter``; :class:`StructAdapter` teaches it msgspec
Structs (read-only, as our items are frozen). A storable item implements :class:`Storable`;
the storage pipeline hands it a connection in a worker thread, so spiders never open one.
"""

from __future__ import annotations

from collections.abc import Iterator, KeysView
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import msgspec
from itemadapter.adapter import AdapterInterface, ItemAdapter

from storage.records import WriteResult

if TYPE_CHECKING:
    import psycopg


@runtime_checkable
class Storable(Protocol):
    """An item the storage pipeline can write.

    Attributes:
        kind: counted in the job's ``items`` under this name (e.g. ``affiliate_rooms``).
    """

    kind: ClassVar[str]

    def store(self, conn: psycopg.Connection[Any], job_id: int | None) -> int | WriteResult:
        """Writes the item in one transaction; returns the rows it stands for, or the
        writer's result (rows stored, and rows the database refused and set aside)."""
        ...


@runtime_checkable
class Batchable(Storable, Protocol):
    """A storable item that can be merged with the next one of its kind before it is written.

    Attributes:
        batch_rows: the pipeline writes once a merged item holds at least this many rows.
    """

    batch_rows: ClassVar[int]

    @property
    def rows(self) -> int:
        """Rows the item holds now."""
        ...

    def merge(self, other: Any) -> Batchable:
        """This item and ``other`` (same kind) as one."""
        ...


class StructAdapter(AdapterInterface):
    """itemadapter support for msgspec Structs (read-only)."""

    @classmethod
    def is_item_class(cls, item_class: type) -> bool:
        return isinstance(item_class, type) and issubclass(item_class, msgspec.Struct)

    def field_names(self) -> KeysView[str]:
        return dict.fromkeys(self.item.__struct_fields__).keys()

    def __getitem__(self, field_name: str) -> Any:
        if field_name in self.item.__struct_fields__:
            return getattr(self.item, field_name)
        raise KeyError(field_name)

    def __setitem__(self, field_name: str, value: Any) -> None:
        raise TypeError(f"{type(self.item).__name__} is frozen")

    def __delitem__(self, field_name: str) -> None:
        raise TypeError(f"{type(self.item).__name__} is frozen")

    def __iter__(self) -> Iterator[str]:
        return iter(self.item.__struct_fields__)

    def __len__(self) -> int:
        return len(self.item.__struct_fields__)

    def get_field_meta(self, field_name: str) -> MappingProxyType[str, Any]:
        return MappingProxyType({})


def register_struct_items() -> None:
    """Makes Scrapy accept msgspec Structs as items (idempotent; called by the crawl process)."""
    classes = ItemAdapter.ADAPTER_CLASSES
    if StructAdapter not in classes:
        classes.appendleft(StructAdapter)  # type: ignore[attr-defined]
