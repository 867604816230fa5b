"""sql/schema.sql creates the same tables, columns, indexes and foreign keys as the ORM + Alembic."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from liverhealth.storage import Repository
from tests.helpers.databases import MYSQL_HOST, MYSQL_PORT, mysql_root

SCHEMA = Path(__file__).resolve().parents[2] / "sql" / "schema.sql"


def describe_schema(database: str) -> dict:
    with mysql_root() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY, EXTRA "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s ORDER BY 1, 2",
            (database,),
        )
        columns = cursor.fetchall()
        cursor.execute(
            "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE "
            "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s ORDER BY 1, 2, 3",
            (database,),
        )
        indexes = cursor.fetchall()
        cursor.execute(
            "SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, "
            "r.DELETE_RULE FROM information_schema.KEY_COLUMN_USAGE k JOIN "
            "information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA=k.CONSTRAINT_SCHEMA "
            "AND r.CONSTRAINT_NAME=k.CONSTRAINT_NAME WHERE k.TABLE_SCHEMA=%s ORDER BY 1, 2",
            (database,),
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(f"SELECT version_num FROM `{database}`.alembic_version")
        revision = cursor.fetchall()
    return {"columns": columns, "indexes": indexes, "foreign_keys": foreign_keys, "revision": revision}


@pytest.mark.mysql
def test_schema_sql_matches_the_orm():
    orm_db, sql_db = (f"lh_schema_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("orm", "sql"))
    try:
        Repository(f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{orm_db}").init()
        with mysql_root() as connection, connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {sql_db} CHARACTER SET utf8mb4")
            cursor.execute(f"USE {sql_db}")
            script = "\n".join(line for line in SCHEMA.read_text().splitlines() if not line.startswith("--"))
            for statement in filter(None, (s.strip() for s in script.split(";"))):
                cursor.execute(statement)
        orm, sql = describe_schema(orm_db), describe_schema(sql_db)
        assert len(orm["columns"]) > 40
        assert sql == orm
        # and a database made from schema.sql is one LiverHealth uses as it is
        repo = Repository(f"mysql+pymysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{sql_db}")
        assert repo.init() == "0008"
    finally:
        with mysql_root() as connection, connection.cursor() as cursor:
            for name in (orm_db, sql_db):
                cursor.execute(f"DROP DATABASE IF EXISTS {name}")
