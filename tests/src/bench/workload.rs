//! The data every extension figure writes: a `todos` table of ~150-byte rows spread over 1,000
//! users' buckets, the sync rules that put each todo in its owner's bucket, and the one statement
//! that generates rows (bulk and single-row writes produce rows of the same shape).

use anyhow::Context as _;
use tokio_postgres::Client;

/// Users (so buckets) the rows are spread over.
pub const USERS: i64 = 1_000;

/// The source table.
pub const SCHEMA: &str = "
CREATE TABLE todos (
    id          text PRIMARY KEY,
    list_id     text NOT NULL,
    owner_id    text NOT NULL,
    description text NOT NULL,
    done        boolean NOT NULL,
    priority    int4 NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
";

/// One bucket per user, holding that user's todos.
pub const RULES: &str = "
bucket_definitions:
  by_owner:
    parameters: SELECT request.user_id() AS owner_id
    data:
      - SELECT * FROM todos WHERE owner_id = bucket.owner_id
";

/// Inserts rows `$1 ..= $2`: row `g` is todo [`todo_id`]`(g)` of user `g % 1000`. About 150
/// bytes a row (id 17, list 32, owner ~7, description ~60, flags and timestamp).
pub const INSERT_RANGE: &str = "
INSERT INTO todos (id, list_id, owner_id, description, done, priority)
SELECT 'todo-' || lpad(g::text, 12, '0'),
       md5('list-' || (g % 20000)),
       'user-' || (g % 1000),
       'todo number ' || g || ': ' || left(md5(g::text) || md5((g * 7)::text), 44),
       g % 3 = 0,
       (g % 5)::int4
FROM generate_series($1::int8, $2::int8) AS g
";

/// The id of row `g` (the object id of its ops).
pub fn todo_id(g: i64) -> String {
    format!("todo-{g:012}")
}

/// Creates the table on `client`'s database.
pub async fn create_schema(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(SCHEMA)
        .await
        .context("creating the todos table")
}

/// Inserts rows `from ..= to` in one statement (one transaction unless the caller opened one).
pub async fn insert_range(client: &Client, from: i64, to: i64) -> anyhow::Result<()> {
    client
        .execute(INSERT_RANGE, &[&from, &to])
        .await
        .with_context(|| format!("inserting todos {from}..={to}"))?;
    Ok(())
}

/// Rows per statement when filling a table with [`fill`].
const FILL_CHUNK: i64 = 100_000;

/// Inserts rows `from ..= to` in statements of 100,000 rows (one transaction each).
pub async fn fill(client: &Client, from: i64, to: i64) -> anyhow::Result<()> {
    let mut first = from;
    while first <= to {
        let last = (first + FILL_CHUNK - 1).min(to);
        insert_range(client, first, last).await?;
        first = last + 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todo_id_matches_the_sql() {
        assert_eq!(todo_id(42), "todo-000000000042");
        assert!(INSERT_RANGE.contains("'todo-' || lpad(g::text, 12, '0')"));
    }
}
