"""SQLAlchemy 2 (over psycopg 3) through pgward: what an ORM does at connect and on first
use — dialect initialization (version, server settings), reflection of tables, columns,
keys and indexes — then ORM CRUD, as the demo roles `app` and `alice`.

Run by integration/tests/drivers.rs; environment as in psycopg_suite.py. Prints one line
per check and exits 1 if any check failed.
"""

import os
import sys

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

failures = []


def engine(who):
    url = (
        f"postgresql+psycopg://{os.environ[f'PGWARD_{who}_USER']}:"
        f"{os.environ[f'PGWARD_{who}_PASSWORD']}@{os.environ['PGWARD_HOST']}:"
        f"{os.environ['PGWARD_PORT']}/{os.environ['PGWARD_DB']}"
    )
    return create_engine(
        url,
        connect_args={
            "sslmode": "verify-full",
            "sslrootcert": os.environ["PGWARD_CA"],
            "gssencmode": "disable",
        },
    )


def check(name, fn):
    try:
        fn()
        print(f"ok   {name}")
    except Exception as e:  # noqa: BLE001 - report every failure, keep going
        failures.append(name)
        print(f"FAIL {name}: {type(e).__name__}: {e}")


class Base(DeclarativeBase):
    pass


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int]
    total: Mapped[float]
    status: Mapped[str]
    note: Mapped[str | None]


app = engine("APP")
alice = engine("ALICE")


def reflect_as_alice():
    insp = inspect(alice)
    tables = insp.get_table_names()
    assert {"customers", "orders", "products"} <= set(tables), tables
    cols = [c["name"] for c in insp.get_columns("customers")]
    assert "email" in cols, cols
    assert insp.get_pk_constraint("orders")["constrained_columns"] == ["id"]
    insp.get_foreign_keys("orders")
    insp.get_indexes("orders")
    insp.get_view_names()


def orm_crud_as_app():
    with Session(app) as s:
        o = Order(customer_id=1, total=12.5, status="new", note="pgward-sqlalchemy")
        s.add(o)
        s.flush()
        assert o.id is not None
        o.status = "paid"
        s.flush()
        got = s.scalars(select(Order).where(Order.note == "pgward-sqlalchemy")).all()
        assert [g.status for g in got] == ["paid"], got
        s.delete(o)
        s.commit()


def denied_then_usable():
    with alice.connect() as c:
        try:
            c.execute(text("SELECT email FROM customers"))
            raise AssertionError("the email column was not denied")
        except DBAPIError as e:
            assert getattr(e.orig, "sqlstate", None) == "42501", e
        c.rollback()
        assert c.execute(text("SELECT count(*) FROM orders")).scalar() > 0


check("alice: dialect initialization on connect", lambda: alice.connect().close())
check("alice: reflection (tables, columns, pk, fks, indexes, views)", reflect_as_alice)
check("app: ORM insert/update/select/delete in a session", orm_crud_as_app)
check("alice: a denied column gets 42501, the connection is still usable", denied_then_usable)

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
