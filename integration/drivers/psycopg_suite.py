"""psycopg 3 through pgward: connect, CRUD, pipeline mode, prepared statements, COPY,
server-side cursors and type introspection, as the demo roles `app` and `alice`.

Run by integration/tests/drivers.rs. Connection parameters come from the environment:
PGWARD_HOST, PGWARD_PORT, PGWARD_DB, PGWARD_CA, PGWARD_<ROLE>_USER, PGWARD_<ROLE>_PASSWORD.
Prints one line per check and exits 1 if any check failed.
"""

import os
import sys
from decimal import Decimal

import psycopg
from psycopg import errors
from psycopg.types import TypeInfo
from psycopg.types.composite import CompositeInfo
from psycopg.types.enum import EnumInfo
from psycopg.types.range import RangeInfo

NOTE = "pgward-psycopg"
failures = []


def connect(who, **kw):
    return psycopg.connect(
        host=os.environ["PGWARD_HOST"],
        port=os.environ["PGWARD_PORT"],
        dbname=os.environ["PGWARD_DB"],
        user=os.environ[f"PGWARD_{who}_USER"],
        password=os.environ[f"PGWARD_{who}_PASSWORD"],
        sslmode="verify-full",
        sslrootcert=os.environ["PGWARD_CA"],
        gssencmode="disable",
        connect_timeout=10,
        **kw,
    )


def describe(e):
    diag = getattr(e, "diag", None)
    if diag is not None and diag.sqlstate:
        return f"{type(e).__name__} SQLSTATE {diag.sqlstate}: {diag.message_primary} (hint: {diag.message_hint})"
    return f"{type(e).__name__}: {e}"


def check(name):
    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
            failures.append(name)
            print(f"FAIL {name}: {describe(e)}", flush=True)
        else:
            print(f"ok   {name}", flush=True)
        return fn

    return run


def expect_denied(fn, what):
    try:
        fn()
    except errors.InsufficientPrivilege as e:
        assert e.diag.sqlstate == "42501", e.diag.sqlstate
        assert e.diag.message_primary.startswith("permission denied"), e.diag.message_primary
        return e
    raise AssertionError(f"{what} was not denied")


app = connect("APP")


@check("app: connect with sslmode=verify-full, autocommit off, pinned settings reported")
def _():
    assert not app.autocommit
    assert app.info.parameter_status("standard_conforming_strings") == "on"
    assert app.pgconn.ssl_in_use
    assert app.info.server_version >= 130000


state = {}


@check("app: INSERT ... RETURNING with server-side bound parameters")
def _():
    cur = app.execute(
        "INSERT INTO orders (customer_id, total, status, note) VALUES (%s, %s, %s, %s) RETURNING id, status, total",
        (1, Decimal("12.50"), "new", NOTE),
    )
    oid, status, total = cur.fetchone()
    assert status == "new" and total == Decimal("12.50"), (status, total)
    state["id"] = oid


@check("app: UPDATE status, SELECT with parameters, DELETE, commit")
def _():
    oid = state["id"]
    assert app.execute("UPDATE orders SET status = %s WHERE id = %s", ("paid", oid)).rowcount == 1
    row = app.execute("SELECT id, status, note, total FROM orders WHERE id = %s AND note = %s", (oid, NOTE)).fetchone()
    assert row == (oid, "paid", NOTE, Decimal("12.50")), row
    app.commit()
    assert app.execute("DELETE FROM orders WHERE id = %s", (oid,)).rowcount == 1
    app.commit()
    assert app.execute("SELECT count(*) FROM orders WHERE id = %s", (oid,)).fetchone()[0] == 0
    app.commit()


@check("app: named prepared statements (prepare=True and the automatic threshold)")
def _():
    for i in range(7):
        got = app.execute("SELECT count(*) FROM orders WHERE customer_id = %s", (i + 1,), prepare=True).fetchone()[0]
        assert got >= 0
    for i in range(7):
        app.execute("SELECT status FROM orders WHERE id = %s", (i + 1,)).fetchone()
    app.commit()


@check("app: executemany INSERT, then DELETE of the same rows")
def _():
    with app.cursor() as cur:
        cur.executemany(
            "INSERT INTO orders (customer_id, total, status, note) VALUES (%s, %s, 'new', %s)",
            [(c, Decimal(c), NOTE + "-many") for c in range(1, 6)],
        )
        cur.execute("DELETE FROM orders WHERE note = %s", (NOTE + "-many",))
        assert cur.rowcount == 5, cur.rowcount
    app.commit()


@check("app: place_order(...) is allowed (rolled back)")
def _():
    oid = app.execute("SELECT public.place_order(%s, %s, %s)", (2, 3, 1)).fetchone()[0]
    assert oid > 0
    app.rollback()


@check("app: COPY orders FROM STDIN and COPY (SELECT ...) TO STDOUT")
def _():
    with app.cursor() as cur:
        with cur.copy("COPY orders (customer_id, total, status, note) FROM STDIN") as copy:
            copy.write_row((3, Decimal("1.00"), "new", NOTE + "-copy"))
            copy.write_row((4, Decimal("2.00"), "new", NOTE + "-copy"))
        rows = []
        with cur.copy("COPY (SELECT id, note FROM orders WHERE note = 'pgward-psycopg-copy') TO STDOUT") as copy:
            rows = list(copy.rows())
        assert len(rows) == 2, rows
    app.rollback()


@check("app: a denied statement in a transaction gets 42501, rollback, session usable")
def _():
    app.execute("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', %s)", (NOTE + "-tx",))
    e = expect_denied(lambda: app.execute("SELECT email FROM customers WHERE id = %s", (1,)), "SELECT from customers")
    assert "customers" in e.diag.message_primary, e.diag.message_primary
    app.rollback()
    assert app.execute("SELECT count(*) FROM orders WHERE note = %s", (NOTE + "-tx",)).fetchone()[0] == 0
    expect_denied(lambda: app.execute("UPDATE orders SET total = 0 WHERE id = %s", (1,)), "UPDATE orders.total")
    app.rollback()
    app.execute("SELECT 1").fetchone()
    app.commit()


@check("app: pipeline mode: a denied statement mid-pipeline raises 42501, later syncs run")
def _():
    app.autocommit = True
    try:
        ins = "INSERT INTO orders (customer_id, total, status, note) VALUES (%s, 1, 'new', %s) RETURNING id"
        got = None
        after = None
        try:
            with app.pipeline() as p:
                app.execute(ins, (1, NOTE + "-pipe-a"))
                app.execute("SELECT phone FROM customers WHERE id = %s", (1,))
                app.execute(ins, (1, NOTE + "-pipe-b"))
                try:
                    p.sync()
                except errors.InsufficientPrivilege as e:
                    got = e
                after = app.execute(ins, (1, NOTE + "-pipe-c"))
                after2 = app.execute("SELECT count(*) FROM orders WHERE note LIKE %s", (NOTE + "-pipe-%",))
        except errors.InsufficientPrivilege as e:
            got = got or e
        assert got is not None, "the denied statement did not raise"
        assert got.diag.sqlstate == "42501"
        # Everything in the aborted sync block was skipped; the next block ran.
        assert after is not None and after.fetchone()[0] > 0
        assert after2.fetchone()[0] == 1, "only the insert after the sync point is there"
        with app.pipeline():
            c = app.execute("SELECT note FROM orders WHERE note LIKE %s ORDER BY note", (NOTE + "-pipe-%",))
        assert [r[0] for r in c.fetchall()] == [NOTE + "-pipe-c"]
        app.execute("DELETE FROM orders WHERE note LIKE %s", (NOTE + "-pipe-%",))
    finally:
        app.autocommit = False


@check("app: pipeline without an explicit sync: the block raises, the connection works afterwards")
def _():
    try:
        with app.pipeline():
            app.execute("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', %s)", (NOTE + "-pipe2",))
            app.execute("DELETE FROM customers WHERE id = %s", (1,))
            app.execute("SELECT count(*) FROM orders")
        raise AssertionError("the pipeline did not raise")
    except errors.InsufficientPrivilege as e:
        assert e.diag.sqlstate == "42501"
    app.rollback()
    assert app.execute("SELECT count(*) FROM orders WHERE note = %s", (NOTE + "-pipe2",)).fetchone()[0] == 0
    app.commit()


@check("app: TypeInfo.fetch (catalog defaults to true) and a whole-row composite")
def _():
    info = TypeInfo.fetch(app, "int8")
    assert info is not None and info.oid == 20, info
    c = CompositeInfo.fetch(app, "orders")
    assert c is not None and list(c.field_names)[:2] == ["id", "customer_id"], (c, c.field_names)
    app.rollback()


app.close()
alice = connect("ALICE")


@check("alice: TypeInfo.fetch for int4, text[], numeric, an unknown type")
def _():
    for name in ["int4", "text", "numeric", "timestamptz", "int4[]"]:
        info = TypeInfo.fetch(alice, name)
        assert info is not None, name
        assert info.oid > 0 and info.array_oid >= 0, (name, info)
    assert TypeInfo.fetch(alice, "no_such_type_pgward") is None
    alice.rollback()


@check("alice: RangeInfo, CompositeInfo and EnumInfo fetch")
def _():
    r = RangeInfo.fetch(alice, "int4range")
    assert r is not None and r.subtype_oid == 23, r
    c = CompositeInfo.fetch(alice, "public.orders")
    assert c is not None and "status" in c.field_names, c
    assert EnumInfo.fetch(alice, "no_such_enum_pgward") is None
    alice.rollback()


@check("alice: SELECT with parameters on the allowed columns, commit")
def _():
    rows = alice.execute(
        "SELECT id, customer_id, total, status, created_at FROM orders WHERE total > %s AND status = ANY(%s) ORDER BY id",
        (Decimal("0"), ["new", "paid"]),
    ).fetchall()
    assert rows, "no rows"
    alice.commit()


@check("alice: server-side cursor (DECLARE ... CURSOR / FETCH)")
def _():
    with alice.cursor(name="pgward_curs") as cur:
        cur.itersize = 7
        cur.execute("SELECT id, country FROM customers ORDER BY id")
        assert len(cur.fetchall()) == 30
    alice.commit()


@check("alice: a denied column gets 42501 with the reason, the session is still usable")
def _():
    e = expect_denied(lambda: alice.execute("SELECT email FROM customers WHERE id = %s", (1,)), "customers.email")
    assert "customers.email" in e.diag.message_primary, e.diag.message_primary
    alice.rollback()
    assert alice.execute("SELECT count(*) FROM customers WHERE country = %s", ("GB",)).fetchone()[0] > 0
    alice.commit()


@check("alice: catalog queries an application runs (pg_type, pg_class, information_schema)")
def _():
    alice.execute("SELECT oid, typname FROM pg_catalog.pg_type WHERE typname = %s", ("int4",)).fetchone()
    alice.execute(
        "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v')"
    ).fetchall()
    cols = alice.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s",
        ("orders",),
    ).fetchall()
    assert cols, "no columns"
    alice.execute("SELECT current_schema(), version()").fetchone()
    alice.commit()


alice.close()
print(f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version()}): {len(failures)} failed", flush=True)
sys.exit(1 if failures else 0)
