// pgjdbc through pgward: connect with sslmode=verify-full, CRUD with server-prepared
// (named) statements, batches (one with a denied INSERT), a CallableStatement, and the
// DatabaseMetaData / ResultSetMetaData introspection ORMs run, as the demo roles `app`
// and `alice`.
//
// Run by integration/tests/drivers.rs as a single-file program:
//   java -cp /usr/share/java/postgresql.jar PgjdbcSuite.java
// with the same environment as ../psycopg_suite.py. Prints one line per check and exits
// 1 if any check failed.

import java.math.BigDecimal;
import java.sql.BatchUpdateException;
import java.sql.CallableStatement;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

public class PgjdbcSuite {
    static final String NOTE = "pgward-pgjdbc";
    static final List<String> failures = new ArrayList<>();

    interface Check {
        void run() throws Exception;
    }

    static void check(String name, Check c) {
        try {
            c.run();
            System.out.println("ok   " + name);
        } catch (Throwable e) {
            failures.add(name);
            System.out.println("FAIL " + name + ": " + describe(e));
        }
        System.out.flush();
    }

    static String describe(Throwable e) {
        if (e instanceof SQLException s) {
            StringBuilder b = new StringBuilder(e.getClass().getSimpleName() + " SQLSTATE " + s.getSQLState() + ": " + s.getMessage());
            for (SQLException n = s.getNextException(); n != null; n = n.getNextException()) {
                b.append(" | next: SQLSTATE ").append(n.getSQLState()).append(": ").append(n.getMessage());
            }
            return b.toString();
        }
        return e.toString();
    }

    static void require(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static SQLException expectDenied(Check c, String what) throws Exception {
        try {
            c.run();
        } catch (SQLException e) {
            SQLException d = e;
            // A batch reports the server's error as the next exception.
            if (e instanceof BatchUpdateException && e.getNextException() != null) d = e.getNextException();
            require("42501".equals(d.getSQLState()), what + ": " + describe(e));
            require(d.getMessage().contains("permission denied"), d.getMessage());
            return d;
        }
        throw new AssertionError(what + " was not denied");
    }

    static Connection connect(String who) throws SQLException {
        String url = "jdbc:postgresql://" + System.getenv("PGWARD_HOST") + ":" + System.getenv("PGWARD_PORT") + "/" + System.getenv("PGWARD_DB");
        Properties p = new Properties();
        p.setProperty("user", System.getenv("PGWARD_" + who + "_USER"));
        p.setProperty("password", System.getenv("PGWARD_" + who + "_PASSWORD"));
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", System.getenv("PGWARD_CA"));
        p.setProperty("gssEncMode", "disable");
        p.setProperty("connectTimeout", "10");
        // Server-prepare from the second execution on, so named statements are used.
        p.setProperty("prepareThreshold", "2");
        Connection c = DriverManager.getConnection(url, p);
        c.setAutoCommit(false);
        return c;
    }

    static long count(Connection c, String note) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM orders WHERE note LIKE ?")) {
            ps.setString(1, note);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Connection app = connect("APP");
        check("app: connect with sslmode=verify-full, autocommit off", () -> {
            require(!app.getAutoCommit(), "autocommit");
            try (Statement s = app.createStatement(); ResultSet rs = s.executeQuery("SHOW standard_conforming_strings")) {
                rs.next();
                require("on".equals(rs.getString(1)), rs.getString(1));
            }
            app.commit();
        });

        check("app: INSERT with generated keys (RETURNING *), UPDATE, SELECT, DELETE, commit", () -> {
            long id;
            try (PreparedStatement ps = app.prepareStatement(
                    "INSERT INTO orders (customer_id, total, status, note) VALUES (?, ?, ?, ?)", Statement.RETURN_GENERATED_KEYS)) {
                ps.setInt(1, 1);
                ps.setBigDecimal(2, new BigDecimal("4.20"));
                ps.setString(3, "new");
                ps.setString(4, NOTE);
                require(ps.executeUpdate() == 1, "insert");
                try (ResultSet keys = ps.getGeneratedKeys()) {
                    require(keys.next(), "no generated key");
                    id = keys.getLong("id");
                }
            }
            try (PreparedStatement ps = app.prepareStatement("UPDATE orders SET status = ? WHERE id = ?")) {
                ps.setString(1, "paid");
                ps.setLong(2, id);
                require(ps.executeUpdate() == 1, "update");
            }
            try (PreparedStatement ps = app.prepareStatement("SELECT status, total FROM orders WHERE id = ? AND note = ?")) {
                ps.setLong(1, id);
                ps.setString(2, NOTE);
                try (ResultSet rs = ps.executeQuery()) {
                    require(rs.next() && "paid".equals(rs.getString(1)), "select");
                    require(new BigDecimal("4.20").equals(rs.getBigDecimal(2)), "total");
                }
            }
            app.commit();
            try (PreparedStatement ps = app.prepareStatement("DELETE FROM orders WHERE id = ?")) {
                ps.setLong(1, id);
                require(ps.executeUpdate() == 1, "delete");
            }
            app.commit();
        });

        check("app: a server-prepared (named) statement executed repeatedly", () -> {
            try (PreparedStatement ps = app.prepareStatement("SELECT id, total FROM orders WHERE customer_id = ? ORDER BY id")) {
                for (int c = 1; c <= 6; c++) {
                    ps.setInt(1, c);
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) rs.getInt(1);
                    }
                }
            }
            app.commit();
        });

        check("app: a PreparedStatement batch of INSERTs, then DELETE", () -> {
            try (PreparedStatement ps = app.prepareStatement("INSERT INTO orders (customer_id, total, status, note) VALUES (?, ?, 'new', ?)")) {
                for (int c = 1; c <= 5; c++) {
                    ps.setInt(1, c);
                    ps.setBigDecimal(2, BigDecimal.valueOf(c));
                    ps.setString(3, NOTE + "-batch");
                    ps.addBatch();
                }
                int[] n = ps.executeBatch();
                require(n.length == 5, "batch size");
            }
            try (PreparedStatement ps = app.prepareStatement("DELETE FROM orders WHERE note = ?")) {
                ps.setString(1, NOTE + "-batch");
                require(ps.executeUpdate() == 5, "delete batch");
            }
            app.commit();
        });

        check("app: a batch with one denied INSERT fails the batch, the connection is still usable", () -> {
            expectDenied(() -> {
                try (Statement s = app.createStatement()) {
                    s.addBatch("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', '" + NOTE + "-deny')");
                    s.addBatch("INSERT INTO products (name, price, stock) VALUES ('pgward-pgjdbc', 1, 1)");
                    s.addBatch("INSERT INTO orders (customer_id, total, status, note) VALUES (2, 2, 'new', '" + NOTE + "-deny')");
                    s.executeBatch();
                }
            }, "the batch with INSERT INTO products");
            app.rollback();
            require(count(app, NOTE + "-deny") == 0, "rows of the failed batch remain");
            app.commit();
            expectDenied(() -> {
                try (PreparedStatement ps = app.prepareStatement("INSERT INTO products (name, price, stock) VALUES (?, 1, 1)")) {
                    ps.setString(1, "pgward-pgjdbc");
                    ps.addBatch();
                    ps.setString(1, "pgward-pgjdbc-2");
                    ps.addBatch();
                    ps.executeBatch();
                }
            }, "a prepared batch of INSERT INTO products");
            app.rollback();
            require(count(app, "%") > 0, "the connection works after the batch");
            app.commit();
        });

        check("app: CallableStatement {? = call public.place_order(?, ?, ?)} (rolled back)", () -> {
            try (CallableStatement cs = app.prepareCall("{? = call public.place_order(?, ?, ?)}")) {
                cs.registerOutParameter(1, Types.INTEGER);
                cs.setInt(2, 2);
                cs.setInt(3, 3);
                cs.setInt(4, 1);
                cs.execute();
                require(cs.getInt(1) > 0, "order id");
            }
            app.rollback();
        });

        check("app: a denied statement in a transaction gets 42501, rollback, session usable", () -> {
            try (Statement s = app.createStatement()) {
                s.executeUpdate("INSERT INTO orders (customer_id, total, status, note) VALUES (1, 1, 'new', '" + NOTE + "-tx')");
            }
            SQLException e = expectDenied(() -> {
                try (PreparedStatement ps = app.prepareStatement("SELECT email FROM customers WHERE id = ?")) {
                    ps.setInt(1, 1);
                    ps.executeQuery().close();
                }
            }, "SELECT from customers");
            require(e.getMessage().contains("customers"), e.getMessage());
            app.rollback();
            require(count(app, NOTE + "-tx") == 0, "the earlier insert was rolled back");
            app.commit();
        });
        app.close();

        Connection alice = connect("ALICE");
        check("alice: DatabaseMetaData getTables/getColumns/getPrimaryKeys/getImportedKeys/getIndexInfo", () -> {
            DatabaseMetaData md = alice.getMetaData();
            int tables = 0;
            try (ResultSet rs = md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) tables++;
            }
            require(tables >= 4, "tables: " + tables);
            List<String> cols = new ArrayList<>();
            try (ResultSet rs = md.getColumns(null, "public", "orders", "%")) {
                while (rs.next()) cols.add(rs.getString("COLUMN_NAME"));
            }
            require(cols.contains("status") && cols.contains("note"), cols.toString());
            try (ResultSet rs = md.getPrimaryKeys(null, "public", "orders")) {
                require(rs.next() && "id".equals(rs.getString("COLUMN_NAME")), "primary key");
            }
            try (ResultSet rs = md.getImportedKeys(null, "public", "orders")) {
                require(rs.next() && "customers".equals(rs.getString("PKTABLE_NAME")), "foreign key");
            }
            try (ResultSet rs = md.getIndexInfo(null, "public", "orders", false, true)) {
                require(rs.next(), "indexes");
            }
            try (ResultSet rs = md.getSchemas()) {
                require(rs.next(), "schemas");
            }
            alice.commit();
        });

        check("alice: DatabaseMetaData getTypeInfo, getProcedures, getFunctions", () -> {
            DatabaseMetaData md = alice.getMetaData();
            try (ResultSet rs = md.getTypeInfo()) {
                require(rs.next(), "types");
            }
            try (ResultSet rs = md.getProcedures(null, "public", "%")) {
                while (rs.next()) rs.getString("PROCEDURE_NAME");
            }
            try (ResultSet rs = md.getFunctions(null, "public", "place%")) {
                while (rs.next()) rs.getString("FUNCTION_NAME");
            }
            alice.commit();
        });

        check("alice: ResultSetMetaData (nullability, table and column names, auto-increment)", () -> {
            try (PreparedStatement ps = alice.prepareStatement("SELECT id, customer_id, total, status FROM orders WHERE status = ? ORDER BY id")) {
                ps.setString(1, "new");
                try (ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData m = rs.getMetaData();
                    require(m.getColumnCount() == 4, "columns");
                    require(m.isNullable(1) == ResultSetMetaData.columnNoNulls, "nullable id");
                    require("orders".equals(m.getTableName(1)), "table name: " + m.getTableName(1));
                    require("id".equals(m.getColumnName(1)), "column name");
                    m.isAutoIncrement(1);
                    m.getColumnTypeName(3);
                    require(rs.next(), "rows");
                }
            }
            alice.commit();
        });

        check("alice: arrays (createArrayOf) as parameters", () -> {
            try (PreparedStatement ps = alice.prepareStatement("SELECT count(*) FROM orders WHERE status = ANY(?)")) {
                ps.setArray(1, alice.createArrayOf("text", new String[] {"new", "paid"}));
                try (ResultSet rs = ps.executeQuery()) {
                    require(rs.next() && rs.getLong(1) > 0, "count");
                }
            }
            alice.commit();
        });

        check("alice: a denied column gets 42501, the session is still usable", () -> {
            SQLException e = expectDenied(() -> {
                try (Statement s = alice.createStatement()) {
                    s.executeQuery("SELECT email FROM customers").close();
                }
            }, "customers.email");
            require(e.getMessage().contains("customers.email"), e.getMessage());
            alice.rollback();
            try (Statement s = alice.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*) FROM customers WHERE country = 'GB'")) {
                require(rs.next() && rs.getLong(1) > 0, "count");
            }
            alice.commit();
        });
        alice.close();

        System.out.println("pgjdbc " + new org.postgresql.Driver().getMajorVersion() + "." + new org.postgresql.Driver().getMinorVersion()
            + ": " + failures.size() + " failed");
        System.exit(failures.isEmpty() ? 0 : 1);
    }
}
