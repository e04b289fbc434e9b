-- pgward demo schema: a small shop. Loaded by `pgward dev` and the integration tests into
-- the database `shop`, run as the superuser. Data is deterministic: 30 customers,
-- 12 products, 60 orders.
--
-- Upstream roles follow least privilege even though pgward enforces its own, finer policy
-- in front of them (defence in depth: a policy mistake must not become a database-wide hole):
--   app_readonly    SELECT on the shop's tables and view; nothing else.
--   app_support     app_readonly plus UPDATE of orders.status / orders.note.
--   app_rw          the application: DML on the tables (no TRUNCATE, no DDL), the sequences
--                   its INSERTs need, and EXECUTE on place_order.
--   migrator        owns the schema objects (DDL, TRUNCATE); not a superuser.
--   pgbench_user    owns the separate database `bench` for pgbench; no rights in `shop`.
--   pgward_catalog  pgward's catalog reader: reads pg_catalog (which every role may) and
--                   holds no privilege on any table, so it can see names but not data.
-- None of them is a superuser or may create roles or databases. Logins are by client
-- certificate only (pg_hba.conf), so no role has a password.

CREATE ROLE app_readonly LOGIN;
CREATE ROLE app_support LOGIN;
CREATE ROLE app_rw LOGIN;
CREATE ROLE migrator LOGIN;
CREATE ROLE pgbench_user LOGIN;
CREATE ROLE pgward_catalog LOGIN;

-- PostgreSQL 15 no longer lets PUBLIC create in schema public; the migrator may.
GRANT USAGE, CREATE ON SCHEMA public TO migrator;

-- Objects are created by, and so owned by, the migrator.
SET ROLE migrator;

CREATE TABLE public.customers (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL UNIQUE,
    phone      text,
    country    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON COLUMN public.customers.name IS 'PII';
COMMENT ON COLUMN public.customers.email IS 'PII';
COMMENT ON COLUMN public.customers.phone IS 'PII';

CREATE TABLE public.products (
    id    serial PRIMARY KEY,
    name  text NOT NULL UNIQUE,
    price numeric(10, 2) NOT NULL CHECK (price >= 0),
    stock integer NOT NULL CHECK (stock >= 0)
);

CREATE TABLE public.orders (
    id          serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES public.customers (id),
    total       numeric(10, 2) NOT NULL CHECK (total >= 0),
    status      text NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'paid', 'shipped', 'delivered', 'cancelled')),
    note        text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_customer_id_idx ON public.orders (customer_id);

CREATE VIEW public.order_totals AS
SELECT c.id AS customer_id,
       count(o.id) AS order_count,
       coalesce(sum(o.total), 0)::numeric(12, 2) AS total_spent
  FROM public.customers c
  LEFT JOIN public.orders o ON o.customer_id = c.id
 GROUP BY c.id;

-- Places an order for qty units of one product: takes the stock, records the order with its
-- total, returns the new order id. SECURITY INVOKER: the caller needs the table rights.
CREATE FUNCTION public.place_order(customer_id integer, product_id integer, qty integer)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, public
AS $$
DECLARE
    v_price numeric(10, 2);
    v_name  text;
    v_order integer;
BEGIN
    IF place_order.qty IS NULL OR place_order.qty <= 0 THEN
        RAISE EXCEPTION 'quantity must be positive' USING ERRCODE = '22023';
    END IF;
    UPDATE public.products p
       SET stock = p.stock - place_order.qty
     WHERE p.id = place_order.product_id AND p.stock >= place_order.qty
    RETURNING p.price, p.name INTO v_price, v_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'product % is unknown or out of stock', place_order.product_id;
    END IF;
    INSERT INTO public.orders (customer_id, total, status, note)
    VALUES (place_order.customer_id, v_price * place_order.qty, 'new',
            format('%s x %s', place_order.qty, v_name))
    RETURNING id INTO v_order;
    RETURN v_order;
END
$$;

INSERT INTO public.customers (name, email, phone, country, created_at)
SELECT f.first || ' ' || l.last,
       lower(f.first || '.' || l.last || i) || '@example.com',
       '+44 20 7946 0' || lpad(i::text, 3, '0'),
       (ARRAY['GB', 'DE', 'FR', 'NL', 'SE', 'US'])[i % 6 + 1],
       timestamptz '2024-01-01 09:00:00+00' + i * interval '1 day'
  FROM generate_series(1, 30) AS i,
       LATERAL (SELECT (ARRAY['Ada', 'Alan', 'Grace', 'Edsger', 'Barbara', 'Donald',
                              'Frances', 'Ken', 'Radia', 'Tim'])[(i - 1) % 10 + 1] AS first) f,
       LATERAL (SELECT (ARRAY['Lovelace', 'Turing', 'Hopper', 'Dijkstra', 'Liskov',
                              'Knuth', 'Allen'])[(i - 1) % 7 + 1] AS last) l
 ORDER BY i;

INSERT INTO public.products (name, price, stock) VALUES
    ('Espresso beans 1kg', 24.90, 120),
    ('Filter coffee 500g', 11.50, 200),
    ('Ceramic mug', 9.00, 75),
    ('Travel mug', 19.95, 40),
    ('Hand grinder', 49.00, 15),
    ('Pour-over dripper', 22.00, 30),
    ('Paper filters (100)', 4.50, 500),
    ('Milk frother', 35.00, 20),
    ('Kettle, gooseneck', 59.00, 10),
    ('Scale, 0.1 g', 27.50, 25),
    ('Green tea 100g', 8.75, 90),
    ('Gift card', 25.00, 1000);

INSERT INTO public.orders (customer_id, total, status, note, created_at)
SELECT (i * 7) % 30 + 1,
       ((i * 37) % 500 + 9.99)::numeric(10, 2),
       (ARRAY['new', 'paid', 'shipped', 'delivered', 'cancelled'])[i % 5 + 1],
       CASE WHEN i % 4 = 0 THEN 'leave at the door' END,
       timestamptz '2024-03-01 08:00:00+00' + i * interval '13 hours'
  FROM generate_series(1, 60) AS i
 ORDER BY i;

-- Nothing runs place_order unless granted (functions default to EXECUTE for PUBLIC).
REVOKE ALL ON FUNCTION public.place_order(integer, integer, integer) FROM PUBLIC;

GRANT SELECT ON public.customers, public.orders, public.products, public.order_totals
    TO app_readonly, app_support;
GRANT UPDATE (status, note) ON public.orders TO app_support;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON public.customers, public.orders, public.products TO app_rw;
GRANT SELECT ON public.order_totals TO app_rw;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_rw;
GRANT EXECUTE ON FUNCTION public.place_order(integer, integer, integer) TO app_rw;

-- Tables the migrator adds later get the same rights.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT ON TABLES TO app_readonly, app_support;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_rw;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE ON SEQUENCES TO app_rw;

RESET ROLE;

ANALYZE;
