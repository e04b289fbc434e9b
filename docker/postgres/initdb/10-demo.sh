#!/bin/sh
# Loads the demo schema, data and roles (the same demo.sql `pgward dev` uses) into `shop`,
# and creates the pgbench database. Run once by the postgres image on a fresh volume.
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres -c "CREATE DATABASE shop" &&
psql -v ON_ERROR_STOP=1 --username postgres --dbname shop -f /pgward/demo.sql &&
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
    -c "CREATE DATABASE bench OWNER pgbench_user"
