-- compose.yaml: the two roles of ADR 0002 and the database, as deploy/local/bootstrap_db.py
-- creates them locally (no passwords: the compose PostgreSQL trusts its private network).
CREATE ROLE numbering_owner WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE ROLE numbering_app WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
-- Platform RLS scope is honoured only for members of numbering_platform; tenant requests log
-- in as numbering_tenant, never a member (ADR 1352).
CREATE ROLE numbering_platform NOLOGIN;
GRANT numbering_platform TO numbering_owner, numbering_app;
CREATE ROLE numbering_tenant WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
CREATE DATABASE numbering OWNER numbering_owner;
