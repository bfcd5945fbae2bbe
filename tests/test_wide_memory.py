"""A schema of thousands of tables holds tens of thousands of these values at once, through the
whole plan and apply: each keeps its fields in slots, without a dict of its own."""

from __future__ import annotations

import pytest

from etl.core.mapping import TargetColumn, TargetForeignKey, TargetIndex, TargetTable
from etl.model import Column, ForeignKey, Index, IndexKey, PgColumn, PgConstraint, PgIndex, PgTable, Table
from etl.pgtypes import PgType
from etl.specfile.document import ColumnSpec, ForeignKeySpec, IndexKeySpec, IndexSpec, TableSpec
from etl.sqlite.convert import ValueConversion

PER_TABLE = (
    Column, ForeignKey, Index, IndexKey, Table, PgColumn, PgConstraint, PgIndex, PgTable, PgType,
    TargetColumn, TargetForeignKey, TargetIndex, TargetTable,
    ColumnSpec, ForeignKeySpec, IndexKeySpec, IndexSpec, TableSpec, ValueConversion,
)  # fmt: skip


@pytest.mark.parametrize("cls", PER_TABLE, ids=lambda cls: cls.__name__)
def test_a_value_there_is_one_of_per_column_or_table_has_no_dict_of_its_own(cls):
    assert "__slots__" in vars(cls)
    assert "__dict__" not in vars(cls)
