-- compose.yaml: the two roles of ADR 0002 and the database, as deploy/local/bootstrap_db.py
-- creates them locally (no passwords: the compose PostgreSQL trusts its private network).
CREATE ROLE numbering_owner WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE numbering_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE numbering OWNER numbering_owner;
