-- The todo example: lists and todos owned by users, and announcements everyone sees.
-- Used by the demo (scripts/demo.sh) and the docker compose file.

CREATE TABLE announcements (
    id         text PRIMARY KEY,
    message    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE lists (
    id         text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    owner_id   text NOT NULL,
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE todos (
    id           text PRIMARY KEY DEFAULT gen_random_uuid()::text,
    list_id      text NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    owner_id     text NOT NULL,
    description  text NOT NULL,
    completed    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);
CREATE INDEX todos_list_id ON todos (list_id);

-- Writes from apps go through the gateway's write endpoint as ferry_writer, with the user's JWT
-- claims set for the transaction: these policies let each user write only their own rows.
ALTER TABLE lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE todos ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_lists ON lists
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
CREATE POLICY own_todos ON todos
    USING (owner_id = current_setting('request.jwt.claim.sub', true))
    WITH CHECK (owner_id = current_setting('request.jwt.claim.sub', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON lists, todos TO ferry_writer;
