// node-postgres (pg) through pgward: connect over verified TLS, CRUD with unnamed and
// named prepared statements, a denied statement in a transaction, catalog reads, as the
// demo roles `app` and `alice`.
//
// Run by integration/tests/drivers.rs (`node suite.js` in this directory, after `npm ci`);
// the same environment as ../psycopg_suite.py. Prints one line per check and exits 1 if
// any check failed.
'use strict';

const fs = require('fs');
const assert = require('assert');
const { Client } = require('pg');

const NOTE = 'pgward-node';
const failures = [];

function client(who) {
  return new Client({
    host: process.env.PGWARD_HOST,
    port: Number(process.env.PGWARD_PORT),
    database: process.env.PGWARD_DB,
    user: process.env[`PGWARD_${who}_USER`],
    password: process.env[`PGWARD_${who}_PASSWORD`],
    ssl: { ca: fs.readFileSync(process.env.PGWARD_CA), rejectUnauthorized: true },
    connectionTimeoutMillis: 10000,
  });
}

function describe(e) {
  if (e && e.code) return `${e.constructor.name} SQLSTATE ${e.code}: ${e.message} (hint: ${e.hint})`;
  return String(e && e.stack ? e.stack : e);
}

async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (e) {
    failures.push(name);
    console.log(`FAIL ${name}: ${describe(e)}`);
  }
}

async function expectDenied(promise, what) {
  try {
    await promise;
  } catch (e) {
    assert.strictEqual(e.code, '42501', `${what}: ${describe(e)}`);
    assert.ok(e.message.startsWith('permission denied'), e.message);
    return e;
  }
  throw new Error(`${what} was not denied`);
}

async function main() {
  const app = client('APP');
  await check('app: connect over verified TLS', async () => {
    await app.connect();
  });

  await check('app: INSERT ... RETURNING, UPDATE, SELECT with parameters, DELETE', async () => {
    const ins = await app.query(
      'INSERT INTO orders (customer_id, total, status, note) VALUES ($1, $2, $3, $4) RETURNING id, status, total',
      [1, '3.50', 'new', NOTE],
    );
    const id = ins.rows[0].id;
    assert.strictEqual(ins.rows[0].total, '3.50');
    const upd = await app.query('UPDATE orders SET status = $1 WHERE id = $2', ['delivered', id]);
    assert.strictEqual(upd.rowCount, 1);
    const sel = await app.query('SELECT id, status, note FROM orders WHERE id = $1 AND note = $2', [id, NOTE]);
    assert.deepStrictEqual(sel.rows, [{ id, status: 'delivered', note: NOTE }]);
    const del = await app.query('DELETE FROM orders WHERE id = $1', [id]);
    assert.strictEqual(del.rowCount, 1);
  });

  await check('app: named prepared statement reused', async () => {
    for (let c = 1; c <= 5; c++) {
      const r = await app.query({
        name: 'orders-by-customer',
        text: 'SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id',
        values: [c],
      });
      assert.ok(Array.isArray(r.rows));
    }
  });

  await check('app: rowMode array and a simple-protocol query', async () => {
    const r = await app.query({ text: 'SELECT id, status FROM orders WHERE id = $1', values: [1], rowMode: 'array' });
    assert.strictEqual(r.rows[0][0], 1);
    const s = await app.query("SELECT count(*) FROM orders WHERE status = 'new'");
    assert.ok(Number(s.rows[0].count) >= 0);
  });

  await check('app: place_order(...) in a transaction, rolled back', async () => {
    await app.query('BEGIN');
    const r = await app.query('SELECT public.place_order($1, $2, $3) AS id', [2, 3, 1]);
    assert.ok(r.rows[0].id > 0);
    await app.query('ROLLBACK');
  });

  await check('app: a denied statement in a transaction gets 42501, rollback, session usable', async () => {
    await app.query('BEGIN');
    await app.query("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', $1)", [NOTE + '-tx']);
    const e = await expectDenied(app.query('SELECT email FROM customers WHERE id = $1', [1]), 'SELECT from customers');
    assert.ok(e.message.includes('customers'), e.message);
    // In the aborted transaction PostgreSQL itself refuses the next statement.
    const aborted = await app.query('SELECT 1').then(() => null, (err) => err);
    assert.ok(aborted && aborted.code === '25P02', `expected 25P02, got ${describe(aborted)}`);
    await app.query('ROLLBACK');
    const n = await app.query('SELECT count(*)::int AS n FROM orders WHERE note = $1', [NOTE + '-tx']);
    assert.strictEqual(n.rows[0].n, 0);
    await expectDenied(app.query('UPDATE orders SET total = 0 WHERE id = $1', [1]), 'UPDATE orders.total');
    const ok = await app.query('SELECT 1 AS one');
    assert.strictEqual(ok.rows[0].one, 1);
  });
  await app.end();

  const alice = client('ALICE');
  await check('alice: connect over verified TLS', async () => {
    await alice.connect();
  });

  await check('alice: SELECT with parameters on the allowed columns', async () => {
    const r = await alice.query(
      'SELECT id, customer_id, total, status, created_at FROM orders WHERE status = ANY($1) ORDER BY id',
      [['new', 'paid']],
    );
    assert.ok(r.rows.length > 0);
    assert.ok(r.rows[0].created_at instanceof Date);
  });

  await check('alice: catalog reads (pg_type, pg_class, information_schema)', async () => {
    const t = await alice.query('SELECT oid, typname, typarray FROM pg_catalog.pg_type WHERE typname = ANY($1)', [
      ['int4', 'text', 'numeric'],
    ]);
    assert.strictEqual(t.rows.length, 3);
    const c = await alice.query(
      "SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = ANY($1)",
      [['r', 'v']],
    );
    assert.ok(c.rows.length >= 4);
    const cols = await alice.query(
      'SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position',
      ['public', 'orders'],
    );
    assert.strictEqual(cols.rows[0].column_name, 'id');
  });

  await check('alice: a denied column gets 42501, the session is still usable', async () => {
    const e = await expectDenied(alice.query('SELECT email FROM customers WHERE id = $1', [1]), 'customers.email');
    assert.ok(e.message.includes('customers.email'), e.message);
    const r = await alice.query('SELECT count(*)::int AS n FROM customers WHERE country = $1', ['GB']);
    assert.ok(r.rows[0].n > 0);
  });
  await alice.end();

  console.log(`node-postgres ${require('pg/package.json').version}: ${failures.length} failed`);
  process.exit(failures.length ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL suite: ${describe(e)}`);
  process.exit(1);
});
