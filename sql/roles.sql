-- ferry's roles and privileges (installed last: every function exists by now).
--
--   ferry_admin    deploys rules, steps, pauses and compacts the applier, reads status
--   ferry_gateway  only the read API and write checkpoints — never a table directly
--
-- Both are NOLOGIN group roles: grant them to the login roles you use, e.g.
--   CREATE ROLE gateway LOGIN PASSWORD '…' IN ROLE ferry_gateway;
-- Every function they may call is SECURITY DEFINER (it runs as the extension's owner, a superuser)
-- with a fixed search_path, so callers need no privilege on ferry's tables or on source tables.
-- Roles are cluster-wide: a second database with the extension reuses them.

-- Two databases creating the extension at once may race to create a role: the loser's
-- duplicate is harmless.
DO $$
BEGIN
    BEGIN
        CREATE ROLE ferry_admin NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    BEGIN
        CREATE ROLE ferry_gateway NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END;
    -- The write endpoint switches to ferry_writer (see write_endpoint.sql).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'ferry_writer') THEN
        GRANT ferry_writer TO ferry_gateway;
    END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA ferry FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA ferry FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ferry FROM PUBLIC;
GRANT USAGE ON SCHEMA ferry TO ferry_admin, ferry_gateway;

DO $$
DECLARE
    f record;
    gateway_functions text[] := ARRAY[
        'latest_checkpoint', 'checkpoint_for', 'checkpoint_changes', 'bucket_data',
        'write_checkpoint_key', 'create_write_checkpoint', 'request_checkpoint'];
    admin_functions text[] := ARRAY[
        'deploy_rules', 'cancel_deploy', 'advance', 'status', 'explain_row', 'user_buckets',
        'pause', 'resume', 'compact', 'version'];
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, p.proname::text AS name
        FROM pg_catalog.pg_proc p
        WHERE p.pronamespace = 'ferry'::regnamespace
    LOOP
        IF f.name = ANY (gateway_functions) OR f.name = ANY (admin_functions) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER SET search_path = pg_catalog, pg_temp', f.sig);
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO ferry_admin', f.sig);
        END IF;
        IF f.name = ANY (gateway_functions) THEN
            EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO ferry_gateway', f.sig);
        END IF;
    END LOOP;
END
$$;
