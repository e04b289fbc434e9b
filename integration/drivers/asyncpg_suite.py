"""asyncpg through pgward: connect, CRUD with named prepared statements, type
introspection (composites, domains), COPY, cursors, a denied statement in a transaction,
as the demo roles `app` and `alice`.

Run by integration/tests/drivers.rs; the same environment as psycopg_suite.py.
Prints one line per check and exits 1 if any check failed.
"""

import asyncio
import os
import ssl
import sys
from decimal import Decimal

import asyncpg

NOTE = "pgward-asyncpg"
failures = []


async def connect(who):
    ctx = ssl.create_default_context(cafile=os.environ["PGWARD_CA"])
    ctx.check_hostname = True
    return await asyncpg.connect(
        host=os.environ["PGWARD_HOST"],
        port=int(os.environ["PGWARD_PORT"]),
        database=os.environ["PGWARD_DB"],
        user=os.environ[f"PGWARD_{who}_USER"],
        password=os.environ[f"PGWARD_{who}_PASSWORD"],
        ssl=ctx,
        timeout=10,
    )


def describe(e):
    if isinstance(e, asyncpg.PostgresError):
        return f"{type(e).__name__} SQLSTATE {e.sqlstate}: {e.message} (hint: {e.hint})"
    return f"{type(e).__name__}: {e}"


async def check(name, fn):
    try:
        await fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
        failures.append(name)
        print(f"FAIL {name}: {describe(e)}", flush=True)
    else:
        print(f"ok   {name}", flush=True)


async def expect_denied(coro, what):
    try:
        await coro
    except asyncpg.InsufficientPrivilegeError as e:
        assert e.sqlstate == "42501", e.sqlstate
        assert e.message.startswith("permission denied"), e.message
        return e
    raise AssertionError(f"{what} was not denied")


async def main():
    app = await connect("APP")
    state = {}

    async def connected():
        assert app.get_settings().standard_conforming_strings == "on"
        assert app.get_server_version().major >= 13

    async def crud():
        row = await app.fetchrow(
            "INSERT INTO orders (customer_id, total, status, note) VALUES ($1, $2, $3, $4) RETURNING id, status, total",
            1, Decimal("7.25"), "new", NOTE,
        )
        assert row["status"] == "new" and row["total"] == Decimal("7.25"), row
        oid = row["id"]
        assert await app.execute("UPDATE orders SET status = $1 WHERE id = $2", "shipped", oid) == "UPDATE 1"
        got = await app.fetchrow("SELECT id, status, note FROM orders WHERE id = $1 AND note = $2", oid, NOTE)
        assert tuple(got) == (oid, "shipped", NOTE), got
        assert await app.execute("DELETE FROM orders WHERE id = $1", oid) == "DELETE 1"
        assert await app.fetchval("SELECT count(*) FROM orders WHERE id = $1", oid) == 0

    async def prepared():
        stmt = await app.prepare("SELECT id, total, created_at FROM orders WHERE customer_id = $1 ORDER BY id")
        assert [a.name for a in stmt.get_attributes()] == ["id", "total", "created_at"]
        assert [t.name for t in stmt.get_parameters()] == ["int4"]
        for c in range(1, 6):
            await stmt.fetch(c)
        # The statement cache reuses named statements.
        for _ in range(3):
            await app.fetchval("SELECT count(*) FROM orders WHERE status = $1", "new")

    async def composite_introspection():
        # A whole-row value of public.orders: asyncpg introspects the composite type
        # (its recursive pg_type/pg_attribute query) before it can decode the row.
        r = await app.fetchval("SELECT o FROM orders o WHERE o.id = $1", 1)
        assert r["id"] == 1, r
        r = await app.fetchval("SELECT $1::orders", (2, 1, Decimal("1"), "new", None, None))
        assert r["status"] == "new", r

    async def intro_query_itself():
        # The recursive pg_type/pg_attribute query asyncpg runs to introspect a type
        # (run here directly, so it is decided apart from the set_config('jit', ...)
        # asyncpg sends around it).
        oid = await app.fetchval("SELECT 'public.orders'::regtype::oid")
        rows = await app.fetch(app._intro_query, [oid])
        assert any(r["oid"] == oid for r in rows), rows

    async def executemany_and_transaction():
        async with app.transaction():
            await app.executemany(
                "INSERT INTO orders (customer_id, total, status, note) VALUES ($1, $2, 'new', $3)",
                [(c, Decimal(c), NOTE + "-many") for c in range(1, 6)],
            )
            assert await app.execute("DELETE FROM orders WHERE note = $1", NOTE + "-many") == "DELETE 5"

    async def copy():
        async with app.transaction():
            n = await app.copy_records_to_table(
                "orders",
                records=[(3, Decimal("1.00"), "new", NOTE + "-copy"), (4, Decimal("2.00"), "new", NOTE + "-copy")],
                columns=["customer_id", "total", "status", "note"],
            )
            assert n == "COPY 2", n
            out = []
            await app.copy_from_query(
                "SELECT id, note FROM orders WHERE note = $1", NOTE + "-copy", output=_Sink(out)
            )
            assert b"".join(out).count(b"\n") == 2, out
            raise _Rollback()

    async def copy_rolled_back():
        try:
            await copy()
        except _Rollback:
            pass
        assert await app.fetchval("SELECT count(*) FROM orders WHERE note = $1", NOTE + "-copy") == 0

    async def cursor():
        async with app.transaction():
            n = 0
            async for _ in app.cursor("SELECT id, status FROM orders ORDER BY id", prefetch=7):
                n += 1
            assert n >= 60, n

    async def place_order():
        tr = app.transaction()
        await tr.start()
        try:
            assert await app.fetchval("SELECT public.place_order($1, $2, $3)", 2, 3, 1) > 0
        finally:
            await tr.rollback()

    async def denied_in_transaction():
        with_denial = app.transaction()
        await with_denial.start()
        await app.execute("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', $1)", NOTE + "-tx")
        e = await expect_denied(app.fetch("SELECT email FROM customers WHERE id = $1", 1), "SELECT from customers")
        assert "customers" in e.message, e.message
        await with_denial.rollback()
        assert await app.fetchval("SELECT count(*) FROM orders WHERE note = $1", NOTE + "-tx") == 0
        await expect_denied(app.execute("UPDATE orders SET total = 0 WHERE id = $1", 1), "UPDATE orders.total")
        await expect_denied(app.execute("DELETE FROM customers WHERE id = 1"), "DELETE customers (simple query)")
        assert await app.fetchval("SELECT 1") == 1

    await check("app: connect over verified TLS, pinned settings reported", connected)
    await check("app: INSERT ... RETURNING, UPDATE, SELECT with parameters, DELETE", crud)
    await check("app: explicit prepared statement and the statement cache", prepared)
    await check("app: composite type introspection (whole-row value of orders)", composite_introspection)
    await check("app: asyncpg's type-introspection query (run directly)", intro_query_itself)
    await check("app: executemany in a transaction", executemany_and_transaction)
    await check("app: copy_records_to_table and copy_from_query (rolled back)", copy_rolled_back)
    await check("app: cursor (portal with prefetch) in a transaction", cursor)
    await check("app: place_order(...) is allowed (rolled back)", place_order)
    await check("app: a denied statement gets 42501, the transaction rolls back, session usable", denied_in_transaction)
    await app.close()

    alice = await connect("ALICE")

    async def domain_introspection():
        # information_schema's columns are domains (sql_identifier, cardinal_number...):
        # asyncpg introspects them on first use.
        rows = await alice.fetch(
            "SELECT table_name, column_name, ordinal_position FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            "public", "orders",
        )
        assert [r["column_name"] for r in rows][:2] == ["id", "customer_id"], rows

    async def type_codec():
        await alice.set_type_codec("numeric", encoder=str, decoder=str, schema="pg_catalog", format="text")
        assert await alice.fetchval("SELECT total FROM orders WHERE id = $1", 1) is not None
        await alice.reload_schema_state()

    async def alice_reads():
        rows = await alice.fetch(
            "SELECT id, customer_id, total, status FROM orders WHERE status = ANY($1::text[]) ORDER BY id", ["new", "paid"]
        )
        assert rows
        assert await alice.fetchval("SELECT count(*) FROM customers WHERE country = $1", "GB") > 0

    async def alice_denied():
        e = await expect_denied(alice.fetch("SELECT email FROM customers WHERE id = $1", 1), "customers.email")
        assert "customers.email" in e.message, e.message
        assert await alice.fetchval("SELECT count(*) FROM products") > 0

    await check("alice: domain type introspection (information_schema.columns)", domain_introspection)
    await check("alice: set_type_codec (pg_type lookup) and reload_schema_state", type_codec)
    await check("alice: SELECT with array parameter on allowed columns", alice_reads)
    await check("alice: a denied column gets 42501, the session is still usable", alice_denied)
    await alice.close()


class _Rollback(Exception):
    pass


class _Sink:
    def __init__(self, out):
        self.out = out

    async def __call__(self, data):
        self.out.append(bytes(data))


asyncio.run(main())
print(f"asyncpg {asyncpg.__version__}: {len(failures)} failed", flush=True)
sys.exit(1 if failures else 0)
